package processing

// Types returns the event type names the processor reads: for a projector
// or a reactor, those it has handlers for; none means every type. Tools
// use it to tell which processors an event type concerns (the admin
// command's check).
func (p *Processor) Types() []string { return p.h.Types() }
