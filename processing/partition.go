package processing

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/event"
)

// MaxPartitions is the most partitions a processor can be split into
// ([Options.Partitions]).
const MaxPartitions = 1024

// errReleased ends the owned run of a partition that its runner gives up
// to another runner, at a batch boundary, to share the partitions fairly.
var errReleased = errors.New("processing: partition released to another runner")

// partitionStore is what a partitioned processor, and any processor
// checking that it is not one, needs of its store. *eventstore.Store
// implements it.
type partitionStore interface {
	// Partitions returns the processor's number of partitions; 0 when
	// it was never partitioned.
	Partitions(ctx context.Context, name string) (int, error)
	// InitPartitions records k partitions for a processor without a
	// layout that never ran unpartitioned, and returns its layout (1 for
	// one that ran unpartitioned).
	InitPartitions(ctx context.Context, name string, k int) (int, error)
	// PartitionHandled returns what a re-partitioning recorded for a
	// position row about events to skip ("" when none).
	PartitionHandled(ctx context.Context, name string) (string, error)
	// JoinMembers renews owner's membership of the runners sharing the
	// processor, for d, and returns the live members, sorted.
	JoinMembers(ctx context.Context, name, owner string, d time.Duration) ([]string, error)
	// LeaveMembers ends owner's membership.
	LeaveMembers(ctx context.Context, name, owner string) error
}

// RepartitionStore is what [Repartition] needs of a store.
// *eventstore.Store implements it.
type RepartitionStore interface {
	// Partitions returns the processor's number of partitions; 0 when
	// it was never partitioned.
	Partitions(ctx context.Context, name string) (int, error)
	// Repartition replaces the rows old of the processor's layout of
	// from partitions by the rows plan returns, in one transaction that
	// fences the old rows first, and records to as its layout.
	Repartition(ctx context.Context, name string, from int, old []string, to int, plan func(old []event.PartitionRow) ([]event.PartitionRow, error)) error
}

// PartitionName returns the name of the position row of partition j of
// the processor name split into k partitions: "name#j/k", and name itself
// when k is 1 (an unpartitioned processor's one row).
func PartitionName(name string, j, k int) string {
	if k < 2 {
		return name
	}
	return name + "#" + strconv.Itoa(j) + "/" + strconv.Itoa(k)
}

// Repartition changes the number of partitions of the processor name in
// store to k (1 makes it unpartitioned again), without skipping or
// repeating an event. Stop every process running the processor first:
// Repartition fails with [ErrRunning] while any of its partitions is
// leased, and fences them all anyway, so a runner still working on the old
// layout can never save a position again. Then start the processes with
// [Options.Partitions] set to k.
//
// The new partition j covers the streams whose [event.PartitionOf] is j.
// It starts at the smallest saved position among the old partitions
// whose streams it shares, and skips the events that their old partition
// had handled already (the old layout and positions are recorded with
// it): when k is a multiple of the old number, each new partition comes
// from one old partition and simply inherits its position. A partition
// that has not yet passed what it skips cannot be re-partitioned again:
// Repartition fails with [ErrInvalid] until it has run that far.
func Repartition(ctx context.Context, store RepartitionStore, name string, k int) error {
	if err := validName(name); err != nil {
		return fmt.Errorf("processing: repartition %q: %w: %w", name, ErrInvalid, err)
	}
	if k < 1 || k > MaxPartitions {
		return fmt.Errorf("processing: repartition %s: %w: %d partitions, want 1 to %d", name, ErrInvalid, k, MaxPartitions)
	}
	from, err := store.Partitions(ctx, name)
	if err != nil {
		return fmt.Errorf("processing: repartition %s: %w", name, err)
	}
	from = max(from, 1)
	old := make([]string, from)
	for i := range old {
		old[i] = PartitionName(name, i, from)
	}
	err = store.Repartition(ctx, name, from, old, k, func(rows []event.PartitionRow) ([]event.PartitionRow, error) {
		return planRepartition(name, from, k, rows)
	})
	if err != nil {
		return fmt.Errorf("processing: repartition %s from %d to %d partitions: %w", name, from, k, err)
	}
	return nil
}

// planRepartition returns the rows of the to partitions that replace the
// rows old of from partitions (see [Repartition]).
func planRepartition(name string, from, to int, old []event.PartitionRow) ([]event.PartitionRow, error) {
	pos := make([]int64, from)
	for i, r := range old {
		if r.Owner != "" {
			return nil, fmt.Errorf("%w: %s is held by %s: stop every process running %s first", ErrRunning, r.Name, r.Owner, name)
		}
		h, err := parseHandled(r.Handled)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, r.Name, err)
		}
		if m := h.max(); m > r.Position {
			return nil, fmt.Errorf("%w: %s is at %d and has not yet passed %d, the end of what its last re-partitioning skips: run it that far first", ErrInvalid, r.Name, r.Position, m)
		}
		pos[i] = r.Position
	}
	g := gcd(from, to)
	out := make([]event.PartitionRow, to)
	for j := range out {
		// Old partition i shares streams with new partition j when some
		// hash is i modulo from and j modulo to: when i ≡ j modulo
		// gcd(from, to).
		lo, hi := int64(math.MaxInt64), int64(0)
		for i := j % g; i < from; i += g {
			lo, hi = min(lo, pos[i]), max(hi, pos[i])
		}
		r := event.PartitionRow{Name: PartitionName(name, j, to), Position: lo}
		if hi > lo {
			r.Handled = handled{mod: from, through: pos}.String()
		}
		out[j] = r
	}
	return out, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// handled is what a partition made by a re-partitioning skips: an event
// at position p of a stream whose hash is h was handled already when p ≤
// through[h % mod]. Its text is "mod:p0,p1,…".
type handled struct {
	mod     int
	through []int64
}

func parseHandled(s string) (handled, error) {
	if s == "" {
		return handled{}, nil
	}
	m, list, ok := strings.Cut(s, ":")
	mod, err := strconv.Atoi(m)
	if !ok || err != nil || mod < 1 || mod > MaxPartitions {
		return handled{}, fmt.Errorf("bad record of handled events %q", s)
	}
	parts := strings.Split(list, ",")
	if len(parts) != mod {
		return handled{}, fmt.Errorf("bad record of handled events %q", s)
	}
	h := handled{mod: mod, through: make([]int64, mod)}
	for i, p := range parts {
		if h.through[i], err = strconv.ParseInt(p, 10, 64); err != nil {
			return handled{}, fmt.Errorf("bad record of handled events %q", s)
		}
	}
	return h, nil
}

func (h handled) String() string {
	if h.mod == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(h.mod))
	b.WriteByte(':')
	for i, p := range h.through {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(p, 10))
	}
	return b.String()
}

func (h handled) max() int64 {
	var m int64
	for _, p := range h.through {
		m = max(m, p)
	}
	return m
}

// skips reports whether e was handled already.
func (h handled) skips(e event.Event, hash uint32) bool {
	return h.mod > 0 && e.Position <= h.through[hash%uint32(h.mod)]
}

// partition is what makes a Processor one partition of a partitioned one.
type partition struct {
	parent *Processor
	index  int
	count  int

	// The runner's hold on the partition (see partitioned.claim).
	mu       sync.Mutex
	holding  bool
	inBatch  bool
	draining bool
	cancel   context.CancelCauseFunc
}

// filter wraps the batches of seq for p: the events of other partitions'
// streams, and those a re-partitioning recorded as handled, are left out
// (the position moves past them with the batch); a partition its runner
// drains stops between two batches. A store that keeps no partitions
// passes seq as it is.
func (p *Processor) filter(ctx context.Context, seq iter.Seq2[event.Batch, error]) iter.Seq2[event.Batch, error] {
	ps, ok := p.store.(partitionStore)
	if !ok {
		return seq
	}
	pt := p.part
	return func(yield func(event.Batch, error) bool) {
		text, err := ps.PartitionHandled(ctx, p.name)
		if err != nil {
			yield(event.Batch{}, err)
			return
		}
		h, err := parseHandled(text)
		if err != nil {
			yield(event.Batch{}, fmt.Errorf("%w: %s: %w", ErrInvalid, p.name, err))
			return
		}
		for b, err := range seq {
			if err == nil && (pt != nil || h.mod > 0) {
				b.Events = p.keep(b.Events, h)
			}
			if pt != nil && !pt.beginBatch() {
				return
			}
			more := yield(b, err)
			if pt != nil {
				pt.endBatch()
			}
			if !more {
				return
			}
		}
	}
}

// keep returns the events of events that p handles.
func (p *Processor) keep(events []event.Event, h handled) []event.Event {
	index, count := 0, 1
	if p.part != nil {
		index, count = p.part.index, p.part.count
	}
	out := make([]event.Event, 0, len(events)/count+1)
	for _, e := range events {
		hash := event.StreamHash(e.StreamID)
		if int(hash%uint32(count)) == index && !h.skips(e, hash) {
			out = append(out, e)
		}
	}
	return out
}

// beginBatch reports whether the partition may handle another batch: not
// when its runner drains it (its run is cancelled then).
func (pt *partition) beginBatch() bool {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.draining {
		return false
	}
	pt.inBatch = true
	return true
}

// endBatch ends a batch, and the run if its runner drains it meanwhile.
func (pt *partition) endBatch() {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	pt.inBatch = false
	if pt.draining && pt.cancel != nil {
		pt.cancel(errReleased)
	}
}

// drain ends the partition's owned run at the next batch boundary: now
// when no batch is in flight.
func (pt *partition) drain() {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if !pt.holding || pt.draining {
		return
	}
	pt.draining = true
	if !pt.inBatch && pt.cancel != nil {
		pt.cancel(errReleased)
	}
}

// claim reports whether the partition may try to take its lease: whether
// its runner holds fewer partitions than its share. ok false leaves the
// lease to others.
func (pt *partition) claim() bool {
	return pt.parent.parts.claim()
}

// unclaim returns a claim whose lease was not taken.
func (pt *partition) unclaim() { pt.parent.parts.release() }

// taken records that the partition's lease was taken, and how to end the
// run that holds it.
func (pt *partition) taken(cancel context.CancelCauseFunc) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	pt.holding, pt.draining, pt.cancel = true, false, cancel
}

// released records that the partition's run gave its lease up.
func (pt *partition) released() {
	pt.mu.Lock()
	pt.holding, pt.draining, pt.cancel = false, false, nil
	pt.mu.Unlock()
	pt.parent.parts.release()
}

// partitioned is the state of a processor split into partitions
// ([Options.Partitions]): its partitions, as processors of their own, and
// this process's share of them.
type partitioned struct {
	mu     sync.Mutex
	procs  []*Processor
	target int // the partitions this process should hold
	held   int // those it holds or is taking
}

func (pp *partitioned) claim() bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.held >= pp.target {
		return false
	}
	pp.held++
	return true
}

func (pp *partitioned) release() {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	pp.held--
}

// partitions returns p's partitions, made at the first call.
func (p *Processor) partitions() []*Processor {
	pp := p.parts
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.procs != nil {
		return pp.procs
	}
	k := p.opts.Partitions
	opts := p.opts
	opts.Partitions = 0
	for j := range k {
		name := PartitionName(p.name, j, k)
		pk, _ := newParking(p.store, opts) // Park is refused with partitions
		c := &Processor{
			name:    name,
			kind:    p.kind,
			store:   p.store,
			h:       p.h,
			opts:    opts,
			pk:      pk,
			meters:  p.meters,
			tr:      p.tr,
			part:    &partition{parent: p, index: j, count: k},
			status:  Status{Name: name},
			changed: make(chan struct{}),
		}
		pp.procs = append(pp.procs, c)
	}
	return pp.procs
}

// initPartitions checks the layout of a partitioned p, recording it if p
// is new, and records the partitions' start positions.
func (p *Processor) initPartitions(ctx context.Context) error {
	ps, ok := p.store.(partitionStore)
	if !ok {
		return fmt.Errorf("processing: %s: %w: %d partitions: the store (%T) keeps no partitions", p.name, ErrInvalid, p.opts.Partitions, p.store)
	}
	k, err := ps.InitPartitions(ctx, p.name, p.opts.Partitions)
	if err != nil {
		return fmt.Errorf("processing: %s: %w", p.name, err)
	}
	if k != p.opts.Partitions {
		return fmt.Errorf("processing: %s: %w: it has %d partitions, not %d: stop it and re-partition it first (Repartition)", p.name, ErrInvalid, k, p.opts.Partitions)
	}
	// The processor's own row keeps the pause flag of every partition.
	if _, _, err := p.store.LoadPosition(ctx, p.name); err != nil {
		return fmt.Errorf("processing: %s: %w", p.name, err)
	}
	parts := p.partitions()
	if p.opts.Start.kind == startHead && !parts[0].registered.Load() {
		// One head for all: the partitions start at the same place.
		head, err := p.store.(startStore).Head(ctx)
		if err != nil {
			return fmt.Errorf("processing: register %s: %w", p.name, err)
		}
		for _, c := range parts {
			c.opts.Start = After(head)
		}
	}
	for _, c := range parts {
		if _, _, err := c.loadPosition(ctx); err != nil { // registers it first
			return err // named by the store or by register
		}
	}
	return nil
}

// checkUnpartitioned fails when an unpartitioned p's store says it is
// partitioned.
func (p *Processor) checkUnpartitioned(ctx context.Context) error {
	ps, ok := p.store.(partitionStore)
	if !ok || p.part != nil {
		return nil
	}
	k, err := ps.Partitions(ctx, p.name)
	if err != nil {
		if ctx.Err() != nil {
			return nil // the run ends before it starts
		}
		return fmt.Errorf("processing: run %s: %w", p.name, err)
	}
	if k > 1 {
		return fmt.Errorf("processing: run %s: %w: it has %d partitions: set Options.Partitions, or re-partition it to 1 (Repartition)", p.name, ErrInvalid, k)
	}
	return nil
}

// runPartitions runs every partition of p in this process (o nil), or
// this process's share of them, shared with the other runners of p
// (RunOwned).
func (p *Processor) runPartitions(ctx context.Context, o *Ownership) error {
	if err := p.initPartitions(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // the run ends before it starts
		}
		return err
	}
	parts := p.partitions()
	var wg sync.WaitGroup
	errs := make([]error, len(parts))
	if o == nil {
		for j, c := range parts {
			wg.Go(func() { errs[j] = c.Run(ctx) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	log := p.opts.Logger.With("processor", p.name, "owner", o.Owner)
	ps := p.store.(partitionStore) // checked by initPartitions
	p.share(ctx, ps, *o, log)      // before the partitions try to claim
	shareCtx, stopSharing := context.WithCancel(ctx)
	var sharing sync.WaitGroup
	sharing.Go(func() { p.shareEvery(shareCtx, ps, *o, log) })
	for j, c := range parts {
		wg.Go(func() { errs[j] = c.RunOwned(ctx, *o) })
	}
	wg.Wait()
	stopSharing()
	sharing.Wait()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := ps.LeaveMembers(lctx, p.name, o.Owner); err != nil {
		log.WarnContext(ctx, "event processor membership not ended", "error", err)
	}
	return errors.Join(errs...)
}

// shareEvery renews this process's membership every HeartbeatInterval and
// rebalances, until ctx ends.
func (p *Processor) shareEvery(ctx context.Context, ps partitionStore, o Ownership, log *slog.Logger) {
	t := time.NewTicker(o.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.share(ctx, ps, o, log)
	}
}

// share renews this process's membership and sets its share of the
// partitions by the rule every member follows: with N live members, sorted
// by owner ID, the one at index r holds K/N partitions, plus one when r <
// K mod N, so that the shares add up to K. A process holding more than its
// share drains the surplus, each at its next batch boundary; one holding
// less takes free partitions as its partitions poll for their leases.
func (p *Processor) share(ctx context.Context, ps partitionStore, o Ownership, log *slog.Logger) {
	members, err := ps.JoinMembers(ctx, p.name, o.Owner, o.LeaseDuration)
	if err != nil {
		if ctx.Err() == nil {
			log.WarnContext(ctx, "event processor membership not renewed; retrying", "error", err)
		}
		return
	}
	r := slices.Index(members, o.Owner)
	if r < 0 {
		return // renewed, but not seen yet: keep the last share
	}
	k, n := p.opts.Partitions, len(members)
	target := k / n
	if r < k%n {
		target++
	}
	pp := p.parts
	pp.mu.Lock()
	pp.target = target
	surplus := pp.held - target
	procs := pp.procs
	pp.mu.Unlock()
	for _, c := range procs {
		c.part.mu.Lock()
		if c.part.draining {
			surplus-- // on its way out already
		}
		c.part.mu.Unlock()
	}
	for j := len(procs) - 1; j >= 0 && surplus > 0; j-- {
		pt := procs[j].part
		pt.mu.Lock()
		drain := pt.holding && !pt.draining
		pt.mu.Unlock()
		if drain {
			log.InfoContext(ctx, "event processor partition released to share them", "partition", j, "members", n, "share", target)
			pt.drain()
			surplus--
		}
	}
}

// partitionsStatus returns the status of a partitioned processor: its
// partitions' statuses, and a summary of them.
func (p *Processor) partitionsStatus(s Status) Status {
	parts := p.partitions()
	s.Partitions = make([]Status, len(parts))
	s.Position, s.Parked = math.MaxInt64, 0
	states := make(map[State]bool)
	for j, c := range parts {
		cs := c.Status()
		s.Partitions[j] = cs
		s.Position = min(s.Position, cs.Position)
		states[cs.State] = true
		if cs.Attempts > s.Attempts {
			s.Attempts, s.LastError = cs.Attempts, cs.LastError
		}
		if s.LastError == nil {
			s.LastError = cs.LastError
		}
		s.Paused = s.Paused || cs.Paused
	}
	s.State = Idle
	for _, st := range []State{Failed, Retrying, Paused, Running, Standby, Stopped} {
		if states[st] {
			s.State = st
			break
		}
	}
	return s
}

// partitionChanged refreshes the status of p's parent, which sums up its
// partitions'.
func (p *Processor) partitionChanged() {
	parent := p.part.parent
	parent.update(func(s *Status) { *s = parent.partitionsStatus(*s) })
}

// rowNames returns the names of p's position rows: one per partition of
// its layout, as the store has it when it keeps partitions.
func (p *Processor) rowNames(ctx context.Context) ([]string, error) {
	k := max(p.opts.Partitions, 1)
	if ps, ok := p.store.(partitionStore); ok {
		stored, err := ps.Partitions(ctx, p.name)
		if err != nil {
			return nil, err
		}
		if stored > 0 {
			k = stored
		}
	}
	names := make([]string, k)
	for j := range names {
		names[j] = PartitionName(p.name, j, k)
	}
	return names, nil
}

// resetPartitions shows the partitions of a reset processor at 0.
func (p *Processor) resetPartitions() {
	if p.parts == nil {
		return
	}
	for _, c := range p.partitions() {
		c.update(func(s *Status) { s.Position = 0 })
	}
}

// pauseName is the name of the row whose pause flag p follows: a
// partition follows its processor's.
func (p *Processor) pauseName() string {
	if p.part != nil {
		return p.part.parent.name
	}
	return p.name
}

// pausePartitions passes a pause or a resume of a partitioned processor on
// to its partitions.
func (p *Processor) pausePartitions(paused, byProcess bool) {
	if p.parts == nil {
		return
	}
	for _, c := range p.partitions() {
		c.setPaused(paused, byProcess)
	}
}
