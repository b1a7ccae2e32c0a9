package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/duration"

	"sluice.dev/sluice/pkg/canary"
)

// TableOptions choose the columns of RenderTable.
type TableOptions struct {
	// AllNamespaces adds the NAMESPACE column.
	AllNamespaces bool
	// Wide adds the primary's and the canary's revisions.
	Wide bool
	// Now is the time the AGE column counts to.
	Now time.Time
}

// RenderTable writes canaries as a table, one row each, in the order given:
// phase, canary weight as a bar, step, failed checks over the threshold,
// each check's last verdict, paused, age. kubectl sluice get prints it, and
// redraws it in place with --watch.
func RenderTable(w io.Writer, canaries []canary.Canary, opts TableOptions) error {
	tw := newTabWriter(w)
	writeRow(tw, header(opts))
	for i := range canaries {
		writeRow(tw, row(&canaries[i], opts))
	}
	return tw.Flush()
}

// newTabWriter aligns columns as kubectl does.
func newTabWriter(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 3, ' ', 0) }

func writeRow(w io.Writer, cells []string) { fmt.Fprintln(w, strings.Join(cells, "\t")) }

// header is the table's first row.
func header(opts TableOptions) []string {
	cells := []string{"NAME", "PHASE", "WEIGHT", "STEP", "FAILED", "CHECKS", "PAUSED", "AGE"}
	if opts.Wide {
		cells = append(cells, "PRIMARY", "CANARY")
	}
	if opts.AllNamespaces {
		cells = append([]string{"NAMESPACE"}, cells...)
	}
	return cells
}

// row is the table's row of cr.
func row(cr *canary.Canary, opts TableOptions) []string {
	st := cr.Status
	cells := []string{
		cr.Name,
		orDash(string(st.Phase)),
		Bar(st.CanaryWeight, 10),
		stage(cr),
		fmt.Sprintf("%d/%d", st.FailedChecks, cr.Spec.Threshold),
		compactChecks(st.Checks),
		yesNo(Paused(cr)),
		age(cr.CreationTimestamp.Time, opts.Now),
	}
	if opts.Wide {
		cells = append(cells, orDash(st.PrimaryRevision), orDash(st.CanaryRevision))
	}
	if opts.AllNamespaces {
		cells = append([]string{cr.Namespace}, cells...)
	}
	return cells
}

// Bar draws weight percent as a bar of width cells: "[####......]  40%".
func Bar(weight int32, width int) string {
	full := min(max(int(weight), 0), 100) * width / 100
	return fmt.Sprintf("[%s%s] %3d%%", strings.Repeat("#", full), strings.Repeat(".", width-full), weight)
}

// Steps are the weights a rollout of s goes through: its step weights up to
// the first at or above max-weight, where the promotion starts.
func Steps(s canary.Settings) []int32 {
	i := slices.IndexFunc(s.StepWeights, func(w int32) bool { return w >= s.MaxWeight })
	if i < 0 {
		return s.StepWeights
	}
	return s.StepWeights[:i+1]
}

// StepOf is the step of the canary's rollout, such as "2/4": how many of
// its steps it has taken, 0 while the canary starts; "-" outside a rollout.
func StepOf(cr *canary.Canary) string {
	switch cr.Status.Phase {
	case canary.PhaseWaiting, canary.PhaseProgressing, canary.PhaseWaitingPromotion, canary.PhasePromoting:
	default:
		return "-"
	}
	steps := Steps(cr.Spec.Settings)
	taken := 0
	for _, w := range steps {
		if w <= cr.Status.CanaryWeight {
			taken++
		}
	}
	return fmt.Sprintf("%d/%d", taken, len(steps))
}

// stage is the STEP column: the step of a weighted rollout (StepOf), or the
// analysed intervals of an A/B test ("A/B 2/3") or of the mirroring before
// the weights ("mirror 1/3"), which run at weight 0 and so take no step.
func stage(cr *canary.Canary) string {
	step := StepOf(cr)
	set, st := cr.Spec.Settings, cr.Status
	switch {
	case step == "-":
		return step
	case len(set.Match) > 0:
		return fmt.Sprintf("A/B %d/%d", st.Iterations, set.Iterations)
	case set.Mirror && st.CanaryWeight == 0 && st.Iterations < set.Iterations:
		return fmt.Sprintf("mirror %d/%d", st.Iterations, set.Iterations)
	}
	return step
}

// Paused reports whether someone holds the rollout (condition Paused).
func Paused(cr *canary.Canary) bool {
	return apimeta.IsStatusConditionTrue(cr.Status.Conditions, canary.ConditionPaused)
}

// verdictMarks are the verdicts as the table shows them: a failure stands
// out, an undecided check is a question.
var verdictMarks = map[canary.Verdict]string{
	canary.VerdictPassed:       "ok",
	canary.VerdictFailed:       "FAIL",
	canary.VerdictInconclusive: "?",
	canary.VerdictBlind:        "blind",
}

// compactChecks shows each check's last verdict in one cell:
// "success-rate:ok,duration:FAIL". The built-in checks lose their
// "request-" prefix, which only makes the column wider.
func compactChecks(checks []canary.CheckStatus) string {
	if len(checks) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(checks))
	for _, c := range checks {
		mark, ok := verdictMarks[c.Verdict]
		if !ok {
			mark = string(c.Verdict)
		}
		parts = append(parts, strings.TrimPrefix(c.Name, "request-")+":"+mark)
	}
	return strings.Join(parts, ",")
}

// age is how long ago t was, as kubectl shows ages; "-" for no time.
func age(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
