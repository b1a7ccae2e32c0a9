package main

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// The schedule is drawn from the seed alone: each Deployment and the faults
// have a random stream of their own, so that the lines of one never depend on
// how fast another went. Only when each line runs depends on the machine.

// action is what one line of a Deployment's schedule does.
type action int

const (
	// applyGood applies a new template that answers well.
	applyGood action = iota
	// applyBad applies a new template with ERROR_RATE=1, which must fail.
	applyBad
	// undo runs kubectl rollout undo: an old template, applied anew.
	undo
	// cancel applies the primary's template again with kubectl apply,
	// which cancels a pending canary.
	cancel
	// skip rolls a new template out plainly with skip-analysis, then turns
	// skip-analysis off again.
	skip
	// optOut rolls a new template out plainly with opt-in off, then opts in
	// again.
	optOut
	// scale changes the replicas only.
	scale
)

func (a action) String() string {
	return [...]string{"apply", "apply bad", "rollout undo", "cancel", "skip-analysis", "opt-out", "scale"}[a]
}

// path is the client an update goes through.
type path int

const (
	kubectlApply path = iota
	clientGo
)

func (p path) String() string { return [...]string{"kubectl apply", "client-go update"}[p] }

// until is what a line waits for before the next one.
type until int

const (
	// settled: the canary of this template ended (or was never started).
	settled until = iota
	// analysing: the canary of this template is taking traffic, so that the
	// next line lands mid-analysis.
	analysing
	// nothing: the next line follows after the pause alone.
	nothing
)

func (u until) String() string {
	return [...]string{"until settled", "until analysing", "at once"}[u]
}

// line is one step of a Deployment's schedule.
type line struct {
	app, n int
	act    action
	path   path
	// template names the new template (env SEQ) of apply, skip and optOut.
	template string
	replicas int
	until    until
	// pause comes before the line runs.
	pause time.Duration
	// ran is when the line ran; not part of the schedule.
	ran time.Time
}

func (l line) String() string {
	s := fmt.Sprintf("%s #%d: after %s, %s", appName(l.app), l.n, l.pause.Round(time.Millisecond), l.act)
	switch l.act {
	case applyGood, applyBad:
		s += fmt.Sprintf(" of template %s by %s, then wait %s", l.template, l.path, l.until)
	case skip, optOut:
		s += fmt.Sprintf(" with template %s by %s, then back", l.template, l.path)
	case scale:
		s += fmt.Sprintf(" to %d by %s", l.replicas, l.path)
	case cancel:
		s += " (kubectl apply of the primary's template)"
	}
	return s
}

func appName(i int) string { return fmt.Sprintf("app-%02d", i) }

// lines draws the schedule of Deployment app.
type lines struct {
	app, n int
	rnd    *rand.Rand
}

func newLines(seed uint64, app int) *lines {
	return &lines{app: app, rnd: rand.New(rand.NewPCG(seed, uint64(app)+1))}
}

// The weights of the actions, in percent.
var actionWeights = []struct {
	act    action
	weight int
}{
	{applyGood, 40}, {applyBad, 14}, {undo, 9}, {cancel, 6}, {skip, 8}, {optOut, 7}, {scale, 16},
}

func (g *lines) next() line {
	g.n++
	l := line{app: g.app, n: g.n, pause: time.Duration(g.rnd.IntN(1500)) * time.Millisecond}
	pick := g.rnd.IntN(100)
	for _, w := range actionWeights {
		if pick < w.weight {
			l.act = w.act
			break
		}
		pick -= w.weight
	}
	l.path = path(g.rnd.IntN(2))
	switch l.act {
	case applyGood, applyBad, skip, optOut:
		l.template = fmt.Sprintf("%d.%d", g.app, g.n)
	case scale:
		l.replicas = 1 + g.rnd.IntN(3)
	case undo, cancel:
		l.path = kubectlApply
	}
	if l.act == applyGood || l.act == applyBad {
		switch r := g.rnd.IntN(10); {
		case r < 6:
			l.until = settled
		case r < 9:
			l.until = analysing
		default:
			l.until = nothing
		}
	} else {
		l.until = nothing
	}
	return l
}

// faultKind is a kind of fault.
type faultKind int

const (
	killShifter faultKind = iota
	killWebhook
	restartAPIServer
	pauseEtcd
	stopPrometheus
	handOver
)

func (k faultKind) String() string {
	return [...]string{"kill -9 shifter", "kill -9 webhook", "restart kube-apiserver", "pause etcd",
		"stop prometheus", "leader hand-over"}[k]
}

// fault is one line of the fault schedule.
type fault struct {
	n    int
	kind faultKind
	// replica is the shifter that killShifter kills (0 or 1).
	replica int
	// hold is how long the fault lasts before it is healed: the process is
	// kept down, or paused, that long.
	hold time.Duration
	// gap comes before the fault.
	gap time.Duration
}

func (f fault) String() string {
	s := fmt.Sprintf("fault #%d: after %s, %s", f.n, f.gap.Round(time.Millisecond), f.kind)
	if f.kind == killShifter {
		s += fmt.Sprintf(" %d", f.replica)
	}
	if f.hold > 0 {
		s += fmt.Sprintf(", held %s", f.hold.Round(time.Millisecond))
	}
	return s
}

// faults draws the fault schedule.
type faults struct {
	n   int
	rnd *rand.Rand
}

func newFaults(seed uint64) *faults { return &faults{rnd: rand.New(rand.NewPCG(seed, 0))} }

func (g *faults) next() fault {
	g.n++
	f := fault{n: g.n, kind: faultKind(g.rnd.IntN(int(handOver) + 1)), gap: time.Duration(2000+g.rnd.IntN(6000)) * time.Millisecond}
	ms := func(lo, hi int) time.Duration { return time.Duration(lo+g.rnd.IntN(hi-lo)) * time.Millisecond }
	switch f.kind {
	case killShifter:
		f.replica = g.rnd.IntN(2)
		f.hold = ms(0, 3000)
	case killWebhook:
		f.hold = ms(500, 6000)
	case pauseEtcd:
		// Past the shifter's renew deadline (10s) the leader loses its Lease
		// and exits, to be restarted.
		f.hold = ms(1000, 13000)
	case stopPrometheus:
		f.hold = ms(1000, 8000)
	}
	return f
}
