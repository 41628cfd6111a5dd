package projector

// SetSwapHook makes fn run inside the transaction of each swap of p, once
// the swap's changes are made, before the commit: a crash test kills the
// process there.
func SetSwapHook(p *Projector, fn func()) { p.ver.swapHook = fn }
