package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/fields"

	"sluice.dev/sluice/pkg/canary"
)

type waitOptions struct {
	*Options
	timeout  time.Duration
	forWhat  string
	revision string
}

func newWaitCommand(o *Options) *cobra.Command {
	w := &waitOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "wait NAME",
		Short: "Wait for the outcome of a canary's rollout; the exit code tells it",
		Long: `Wait for the outcome of the revision that is current when wait starts: the one
the webhook just diverted to the Deployment, which the shifter may not have
started yet, else the one the Canary shows. --revision names another.

Exit codes:
  0  the revision succeeded (promoted); with --for decided, also when it failed
  1  the revision failed (rolled back): its reason and failed checks are printed
  2  --timeout passed first
  3  a newer revision (or the primary's template applied again) replaced it
  4  wait could not wait: a wrong flag, a Canary it may not read, ...

It needs no more than get, list and watch on canaries.sluice.dev; with get on
deployments.apps it also sees a revision the shifter has not started yet.`,
		Example: `  kubectl apply -f web.yaml && kubectl sluice wait web -n shop --timeout 30m
  kubectl sluice wait web -n shop --for decided
  kubectl sluice wait web -n shop --revision 5d41402abc`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.ExactArgs(1)(cmd, args); err != nil {
				return &ExitError{Code: ExitUnable, Err: err}
			}
			return nil
		},
		ValidArgsFunction: o.completeCanaries,
		RunE: func(cmd *cobra.Command, args []string) error {
			return w.run(cmd.Context(), args[0])
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &ExitError{Code: ExitUnable, Err: err} })
	f := cmd.Flags()
	f.DurationVar(&w.timeout, "timeout", 30*time.Minute, "how long to wait at most (exit code 2); 0 waits for ever")
	f.StringVar(&w.forWhat, "for", string(ForSucceeded), "succeeded: exit 0 only on a promotion; decided: exit 0 on a promotion or a rollback")
	f.StringVar(&w.revision, "revision", "", "the revision to wait for (status.canaryRevision); default: the current one")
	_ = cmd.RegisterFlagCompletionFunc("for", cobra.FixedCompletions([]cobra.Completion{string(ForSucceeded), string(ForDecided)},
		cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (w *waitOptions) run(ctx context.Context, name string) error {
	want := WaitFor(w.forWhat)
	if want != ForSucceeded && want != ForDecided {
		return &ExitError{Code: ExitUnable, Err: fmt.Errorf("--for %q: want %s or %s", w.forWhat, ForSucceeded, ForDecided)}
	}
	c, err := w.Clients()
	if err != nil {
		return &ExitError{Code: ExitUnable, Err: err}
	}
	ns := c.Namespace
	if w.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.timeout)
		defer cancel()
	}
	f := newFollower(w.ErrOut)
	store := f.follow(c.Canaries.ListWatch(ns, fields.OneTermEqualSelector("metadata.name", name)), &canary.Canary{},
		Request{Command: "wait", Verb: "list and watch", Resource: CanaryResource, Namespace: ns})
	if err := f.start(ctx); err != nil {
		return w.ended(ctx, err, fmt.Sprintf("the Canary %s/%s could not be read", ns, name))
	}
	deps := &deploymentReader{clients: c, command: "wait"}
	o := WaitObservation{Revision: w.revision, For: want}
	chosen := w.revision != ""
	last := ""
	for {
		o.Status = nil
		if list := fromStore(store); len(list) == 1 {
			o.Status = &list[0].Status
		}
		dep, known := w.deployment(ctx, deps, ns, name)
		if o.Status == nil && known && !o.Seen {
			// Without a Deployment to opt in, no Canary ever comes.
			if dep == nil {
				return &ExitError{Code: ExitUnable, Err: fmt.Errorf("no Canary %s/%s, and no Deployment of that name", ns, name)}
			}
			if !canary.Enabled(dep.Annotations) {
				return &ExitError{Code: ExitUnable, Err: fmt.Errorf("no Canary %s/%s: its Deployment is not opted in (annotation %s: %s)",
					ns, name, canary.AnnotationEnabled, canary.EnabledValue)}
			}
		}
		o.Pending, o.PendingKnown = "", known
		if dep != nil {
			o.Pending = dep.Annotations[canary.AnnotationCanaryRevision]
		}
		if !chosen && (o.Status != nil || o.Pending != "") {
			// The revision waited for is the one current at the start.
			o.Revision, chosen = WaitTarget(o.Status, o.Pending), true
			if o.Revision != "" {
				w.say(fmt.Sprintf("waiting for revision %s of %s/%s", o.Revision, ns, name))
			}
		}
		res := DecideWait(o)
		o.Seen = o.Seen || (o.Status != nil && o.Revision != "" && o.Status.CanaryRevision == o.Revision)
		if res.Message != last {
			w.say(res.Message)
			last = res.Message
		}
		if res.Done {
			if res.Code == ExitSucceeded {
				return nil
			}
			return &ExitError{Code: res.Code}
		}
		select {
		case <-ctx.Done():
			return w.ended(ctx, ctx.Err(), last)
		case err := <-f.failed:
			return &ExitError{Code: ExitUnable, Err: err}
		case <-f.changed:
		}
	}
}

// deployment reads the Deployment of the Canary, for the revision diverted
// to it, and says whether it could: nil when there is none. Without the
// right to read Deployments, wait sees only what the Canary shows, and says
// so once.
func (w *waitOptions) deployment(ctx context.Context, deps *deploymentReader, ns, name string) (*appsv1.Deployment, bool) {
	warned := deps.refused != nil
	d, err := deps.get(ctx, ns, name)
	if err != nil {
		if !warned {
			fmt.Fprintf(w.ErrOut, "warning: %v\nwarning: waiting for the revision the Canary shows; a revision applied since, which the shifter "+
				"has not started yet, is not seen (name it with --revision)\n", err)
		}
		return nil, false
	}
	return d, true
}

// ended is the outcome of a wait that ctx ended: exit code 2 on the
// timeout, 130 on Ctrl-C.
func (w *waitOptions) ended(ctx context.Context, err error, last string) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		w.say(fmt.Sprintf("timed out after %s: %s", w.timeout, last))
		return &ExitError{Code: ExitTimeout}
	case ctx.Err() != nil:
		return &ExitError{Code: 130}
	}
	return &ExitError{Code: ExitUnable, Err: err}
}

// say prints a line of the wait's progress, with the time, for a
// pipeline's log.
func (w *waitOptions) say(msg string) {
	fmt.Fprintf(w.Out, "%s %s\n", w.Now().Format("15:04:05"), msg)
}
