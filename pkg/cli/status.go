package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"

	"sluice.dev/sluice/pkg/canary"
)

type statusOptions struct {
	*Options
	watch     bool
	allEvents bool
}

func newStatusCommand(o *Options) *cobra.Command {
	s := &statusOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "The whole story of a canary's current revision",
		Long: `Show the whole story of a canary's current revision: the revisions and images
of the primary and the canary, the weight and when the next step is due, each
check with its value, bounds, the primary's value and the requests it rests on,
the conditions, and the events of the revision in order. An event that
Kubernetes folded into an earlier one (the same message again) is shown each
time it happened, with its count.

--watch prints the events as they come, with the state under them, redrawn in
place on a terminal and printed again when it changes otherwise.

Reading the Deployments (for the images) and the events needs the right to; the
rest needs no more than reading canaries.`,
		Example: `  kubectl sluice status web -n shop
  kubectl sluice status web -n shop --watch
  kubectl sluice status web -n shop --all-events`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.completeCanaries,
		RunE: func(cmd *cobra.Command, args []string) error {
			return s.run(cmd.Context(), args[0])
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&s.watch, "watch", "w", false, "keep showing the canary as it changes, and its events as they come")
	f.BoolVar(&s.allEvents, "all-events", false, "show every event of the canary, not only those of the current revision")
	return cmd
}

func (s *statusOptions) run(ctx context.Context, name string) error {
	c, err := s.Clients()
	if err != nil {
		return err
	}
	ns := c.Namespace
	getReq := Request{Command: "status", Verb: "get", Resource: CanaryResource, Namespace: ns, Name: name}
	cr, err := c.Canaries.Get(ctx, ns, name)
	if err != nil {
		return getReq.Explain(err)
	}
	deps := &deploymentReader{clients: c, command: "status"}
	events, eventsErr := c.ListEvents(ctx, ns, name)
	if eventsErr != nil && !apierrors.IsForbidden(eventsErr) {
		return Request{Command: "status", Verb: "list", Resource: "events", Namespace: ns}.Explain(eventsErr)
	}
	eventsNote := ""
	if eventsErr != nil {
		eventsNote = Request{Command: "status", Verb: "list", Resource: "events", Namespace: ns}.Explain(eventsErr).Error()
	}
	if !s.watch {
		v := s.view(ctx, deps, cr, events, eventsNote)
		return RenderStatus(s.Out, v, StatusOptions{Now: s.Now()})
	}
	return s.follow(ctx, c, deps, cr, eventsNote)
}

// view gathers what the story shows: the Canary, its Deployments and its
// events, the notes saying what could not be read.
func (s *statusOptions) view(ctx context.Context, deps *deploymentReader, cr *canary.Canary, events []corev1.Event, eventsNote string) StatusView {
	v := StatusView{Canary: cr}
	var err error
	if v.Primary, err = deps.get(ctx, cr.Namespace, cr.Name); err != nil {
		v.Notes = append(v.Notes, "no images: "+err.Error())
	} else if v.CanaryDeployment, err = deps.get(ctx, cr.Namespace, cr.Name+"-canary"); err != nil {
		v.Notes = append(v.Notes, "no canary images: "+err.Error())
	}
	if eventsNote != "" {
		v.Notes = append(v.Notes, "no events: "+eventsNote)
	}
	v.Events = Occurrences(events)
	if st := cr.Status; !s.allEvents && st.CanaryRevision != "" && !st.RevisionStartTime.IsZero() {
		v.EventsSince = st.RevisionStartTime.Time
		v.Events = OfRevision(v.Events, v.EventsSince)
	}
	return v
}

// follow shows the story live until ctx ends: the events scroll as they
// come, the state is redrawn under them.
func (s *statusOptions) follow(ctx context.Context, c *Clients, deps *deploymentReader, first *canary.Canary, eventsNote string) error {
	ns, name := first.Namespace, first.Name
	f := newFollower(s.ErrOut)
	canaries := f.follow(c.Canaries.ListWatch(ns, fields.OneTermEqualSelector("metadata.name", name)), &canary.Canary{},
		Request{Command: "status --watch", Verb: "list and watch", Resource: CanaryResource, Namespace: ns})
	var events cache.Store
	if eventsNote == "" {
		events = f.follow(cache.NewListWatchFromClient(c.Kube.CoreV1().RESTClient(), "events", ns, EventSelector(name)), &corev1.Event{},
			Request{Command: "status --watch", Verb: "list and watch", Resource: "events", Namespace: ns})
	}
	if err := f.start(ctx); err != nil {
		return err
	}
	live := NewLive(s.Out)
	var tick <-chan time.Time
	if live.Terminal {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	var log EventLog
	cr := first
	var v StatusView
	for changed := true; ; {
		if changed {
			if list := fromStore(canaries); len(list) == 1 {
				cr = &list[0]
			}
			var evs []corev1.Event
			if events != nil {
				for _, obj := range events.List() {
					evs = append(evs, *obj.(*corev1.Event))
				}
			}
			v = s.view(ctx, deps, cr, evs, eventsNote)
			for _, o := range log.Unseen(v.Events) {
				live.Line(FormatOccurrence(o, s.Now(), nil))
			}
		}
		live.Show(StatusBlock(v, StatusOptions{Now: s.Now()}), statusKey(v))
		select {
		case <-ctx.Done():
			return nil
		case err := <-f.failed:
			return err
		case <-f.changed:
			changed = true
		case <-tick:
			changed = false
		}
	}
}
