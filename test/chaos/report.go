package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"sluice.dev/sluice/pkg/canary"
)

// print writes the report: the seed, the faults, the updates and rollouts,
// and every violation with the schedule lines that led to it.
func (rep *report) print(w io.Writer, o options) {
	o.seed = rep.seed
	l := rep.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(w, "seed %d (again: %s); %s\n", rep.seed, o.command(), rep.duration.Round(time.Second))

	fmt.Fprintf(w, "\nfaults:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tkind\tat\tlasted\tfirst progress after")
	lasted, recovery := map[faultKind][]time.Duration{}, map[faultKind][]time.Duration{}
	for _, f := range rep.faults {
		after := "none"
		if f.err != nil {
			after = "not injected: " + f.err.Error()
		} else {
			lasted[f.kind] = append(lasted[f.kind], f.end.Sub(f.start))
			if p, ok := firstAfter(l.progress, f.end); ok {
				recovery[f.kind] = append(recovery[f.kind], p.Sub(f.end))
				after = p.Sub(f.end).Round(10 * time.Millisecond).String()
			}
		}
		kind := f.kind.String()
		if f.kind == killShifter {
			kind += fmt.Sprintf(" %d", f.replica)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", f.n, kind, f.start.Sub(rep.began).Round(100*time.Millisecond),
			f.end.Sub(f.start).Round(100*time.Millisecond), after)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nby kind (median and max):\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  kind\tinjected\tlasted\tfirst progress after")
	for _, k := range slices.Sorted(maps.Keys(lasted)) {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\n", k, len(lasted[k]), spread(lasted[k]), spread(recovery[k]))
	}
	tw.Flush()

	results, outcomes := map[string]int{}, map[string]int{}
	sent := 0
	for _, a := range l.apps {
		for _, u := range a.updates {
			sent++
			results[u.result.String()]++
			if u.outcome != "" {
				outcomes[u.outcome]++
			}
		}
	}
	fmt.Fprintf(w, "\nupdates: %d sent: %s\n", sent, counts(results))
	fmt.Fprintf(w, "rollouts completed: %d (%d promoted, %d failed); diverted updates by outcome: %s\n",
		l.rollouts[canary.PhasePromoting]+l.rollouts[canary.PhaseFailed], l.rollouts[canary.PhasePromoting], l.rollouts[canary.PhaseFailed], counts(outcomes))
	fmt.Fprintf(w, "sluice processes that ended by themselves and were restarted: %s\n", counts(rep.selfExits))
	fmt.Fprintf(w, "outcome events missing, told around a kill -9 of a shifter (events live in its memory until written): %d\n", l.lostEvents)

	fmt.Fprintf(w, "\nviolations: %d\n", len(rep.violations))
	for i, v := range rep.violations {
		fmt.Fprintf(w, "\n%d. %s: %s\n   seed %d; again: %s\n", i+1, orAll(v.app), v.what, rep.seed, o.command())
		if a, ok := l.apps[v.app]; ok {
			fmt.Fprintf(w, "   the schedule of %s up to it:\n", v.app)
			for _, line := range a.lines {
				if v.at.IsZero() || !line.ran.After(v.at) {
					fmt.Fprintf(w, "     %s\n", line)
				}
			}
			fmt.Fprintf(w, "   its updates:\n")
			for _, u := range a.updates {
				outcome := u.outcome
				if u.by != nil {
					outcome += fmt.Sprintf(" (update #%d)", u.by.id)
				}
				fmt.Fprintf(w, "     #%d (line #%d, %s): template %q %s at resourceVersion %d, primary %q, canary %q %s; %s %s\n",
					u.id, u.line.n, u.line.act, u.template, u.result, u.rv, u.primary, u.pendingTemplate, u.pendingRevision, outcome, firstLine(u.err))
			}
			fmt.Fprintf(w, "   its primaries (resourceVersion: primary, canary):")
			for _, v := range a.versions {
				fmt.Fprintf(w, " %d: %s, %s %s;", v.rv, v.primary, v.pendingTemplate, v.pendingRevision)
			}
			fmt.Fprintf(w, "\n   its Canary (resourceVersion: phase, canary revision, weight, primary revision, last failed):")
			for _, st := range a.history() {
				if st.deleted {
					fmt.Fprintf(w, " %d: deleted;", st.rv)
					continue
				}
				fmt.Fprintf(w, " %d: %s %s %d %s %s;", st.rv, st.st.Phase, st.st.CanaryRevision, st.st.CanaryWeight, st.st.PrimaryRevision, st.st.LastFailedRevision)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "   the faults in the minute before:\n")
		for _, f := range rep.faults {
			if !v.at.IsZero() && (f.start.After(v.at) || f.end.Before(v.at.Add(-time.Minute))) {
				continue
			}
			fmt.Fprintf(w, "     %s\n", f.fault)
		}
	}
}

// spread is the median and the maximum of ds.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	slices.Sort(ds)
	return fmt.Sprintf("%s, %s", ds[len(ds)/2].Round(100*time.Millisecond), ds[len(ds)-1].Round(100*time.Millisecond))
}

func firstAfter(times []time.Time, t time.Time) (time.Time, bool) {
	for _, p := range times {
		if p.After(t) {
			return p, true
		}
	}
	return time.Time{}, false
}

func counts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func orAll(app string) string {
	if app == "" {
		return "all"
	}
	return app
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
