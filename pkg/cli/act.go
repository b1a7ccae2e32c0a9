package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"sluice.dev/sluice/pkg/canary"
)

// act is one of the commands that steer a rollout: each writes the
// Canary's spec.intent, for the revision the user saw, and waits until the
// shifter says what it made of it.
type act struct {
	*Options
	action canary.Action
	// revision names the revision to act on; "" for the current one.
	revision     string
	skipAnalysis bool
	timeout      time.Duration
}

// actions are the steering commands and what each says about itself.
var actions = []struct {
	action      canary.Action
	short, long string
}{
	{canary.ActionPause, "Hold a canary at its weight; its interval clock stops",
		"Hold the canary at its current weight. No analysis runs and no deadline counts until kubectl sluice resume."},
	{canary.ActionResume, "Go on with a paused canary, or start one that waits for confirm-rollout",
		"End a pause (the interval goes on where it stopped), or start the canary of a revision that waits for its rollout to be confirmed (sluice.dev/confirm-rollout: manual)."},
	{canary.ActionPromote, "Skip the remaining steps and promote the canary",
		"Promote the canary after its next passing analysis, or at once if it waits for confirm-promotion. With --skip-analysis, promote as soon as the canary is ready, unjudged (a Warning event says so)."},
	{canary.ActionAbort, "Roll the canary back now",
		"Roll the canary back now: phase Failed, reason \"aborted by USER\". Its template stays in the Deployment's sluice.dev/canary-template annotation; kubectl sluice retry runs it again."},
	{canary.ActionRetry, "Run the last failed revision again",
		"Run the revision that was rolled back last again, if its template is still the one the Deployment holds."},
}

func newActCommands(o *Options) []*cobra.Command {
	var cmds []*cobra.Command
	for _, a := range actions {
		x := &act{Options: o, action: a.action}
		cmd := &cobra.Command{
			Use:   verbOf(a.action) + " NAME",
			Short: a.short,
			Long: a.long + `

It acts on the revision the Canary shows now (for retry: the last failed one),
or --revision. If a newer revision was applied meanwhile, the shifter does
nothing and says so. It needs patch on canaries.sluice.dev; sluice records
who asked in the Canary's events.`,
			Args:              cobra.ExactArgs(1),
			ValidArgsFunction: o.completeCanaries,
			RunE: func(cmd *cobra.Command, args []string) error {
				return x.run(cmd.Context(), args[0])
			},
		}
		f := cmd.Flags()
		f.StringVar(&x.revision, "revision", "", "the revision to act on (status.canaryRevision); default: the current one")
		f.DurationVar(&x.timeout, "timeout", 30*time.Second, "how long to wait for the shifter to act on it")
		if a.action == canary.ActionPromote {
			f.BoolVar(&x.skipAnalysis, "skip-analysis", false, "promote without the pending analysis")
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

// verbOf is the command of an action: "pause" for Pause.
func verbOf(a canary.Action) string { return strings.ToLower(string(a)) }

func (x *act) run(ctx context.Context, name string) error {
	c, err := x.Clients()
	if err != nil {
		return err
	}
	ns, command := c.Namespace, verbOf(x.action)
	read := Request{Command: command, Verb: "get", Resource: CanaryResource, Namespace: ns, Name: name}
	cr, err := c.Canaries.Get(ctx, ns, name)
	if err != nil {
		return read.Explain(err)
	}
	revision := x.revision
	if revision == "" {
		revision = cr.Status.CanaryRevision
		if x.action == canary.ActionRetry {
			revision = cr.Status.LastFailedRevision
		}
	}
	if revision == "" {
		return fmt.Errorf("%s/%s has no revision to %s: it is %s; kubectl sluice status %s -n %s tells its story",
			ns, name, command, orDash(string(cr.Status.Phase)), name, ns)
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"intent": map[string]any{
		"action": x.action, "revision": revision, "skipAnalysis": x.skipAnalysis,
		// The webhook stamps them; a client's are never kept.
		"requestedBy": nil, "requestedAt": nil,
	}}})
	if err != nil {
		return err
	}
	written, err := c.Canaries.Patch(ctx, ns, name, types.MergePatchType, patch)
	if err != nil {
		return Request{Command: command, Verb: "patch", Resource: CanaryResource, Namespace: ns, Name: name}.Explain(err)
	}
	if x.skipAnalysis {
		fmt.Fprintf(x.ErrOut, "warning: %s/%s will be promoted without the pending analysis\n", ns, name)
	}
	in := written.Spec.Intent
	var seen *canary.IntentStatus
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, x.timeout, true, func(ctx context.Context) (bool, error) {
		cr, err := c.Canaries.Get(ctx, ns, name)
		if err != nil {
			return false, read.Explain(err)
		}
		seen = cr.Status.ObservedIntent
		return seen != nil && in != nil && seen.Action == in.Action && seen.Revision == in.Revision &&
			seen.RequestedAt.Equal(&in.RequestedAt), nil
	})
	if wait.Interrupted(err) {
		return fmt.Errorf("asked to %s revision %s of %s/%s, but the shifter has not acted on it within %s: is it running? "+
			"kubectl sluice status %s -n %s shows when it does", command, revision, ns, name, x.timeout, name, ns)
	}
	if err != nil {
		return err
	}
	if seen.Result == canary.IntentIgnored {
		return &ExitError{Code: 1, Err: fmt.Errorf("%s of revision %s of %s/%s did nothing: %s", command, revision, ns, name, seen.Message)}
	}
	_, err = fmt.Fprintf(x.Out, "%s/%s revision %s: %s (asked by %s)\n", ns, name, revision, seen.Message, seen.RequestedBy)
	return err
}
