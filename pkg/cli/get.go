package cli

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/tools/cache"

	"sluice.dev/sluice/pkg/canary"
)

type getOptions struct {
	*Options
	allNamespaces bool
	output        string
	watch         bool
}

func newGetCommand(o *Options) *cobra.Command {
	g := &getOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "get [NAME]",
		Short: "List canaries: phase, weight, step, failed checks and each check's verdict",
		Long: `List sluice's canaries of the namespace, or of every namespace with -A: the
phase, the canary weight as a bar, the step of the rollout, the failed checks
over the threshold, each check's last verdict (ok, FAIL, ? for too few
requests to judge, blind), whether it is paused, and its age. -o wide adds the
revisions of the primary and the canary.

--watch redraws the table in place on a terminal; otherwise it prints a row
each time a canary changes.`,
		Example: `  kubectl sluice get -n shop
  kubectl sluice get web -n shop --watch
  kubectl sluice get -A -o wide
  kubectl sluice get -A -o json`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: o.completeCanaries,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd.Context(), args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&g.allNamespaces, "all-namespaces", "A", false, "list the canaries of every namespace")
	f.StringVarP(&g.output, "output", "o", "", "output format: wide, json or yaml")
	f.BoolVarP(&g.watch, "watch", "w", false, "keep the table up to date as the canaries change")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]cobra.Completion{"wide", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (g *getOptions) run(ctx context.Context, args []string) error {
	switch g.output {
	case "", "wide", "json", "yaml":
	default:
		return fmt.Errorf("--output %q: want wide, json or yaml", g.output)
	}
	if g.watch && (g.output == "json" || g.output == "yaml") {
		return fmt.Errorf("--watch shows a table: use it without -o %s", g.output)
	}
	name := ""
	if len(args) == 1 {
		name = args[0]
		if g.allNamespaces {
			return fmt.Errorf("a canary is named within its namespace: give -n NAMESPACE rather than -A with the name %s", name)
		}
	}
	c, err := g.Clients()
	if err != nil {
		return err
	}
	ns := c.Namespace
	if g.allNamespaces {
		ns = ""
	}
	if g.watch {
		return g.follow(ctx, c, ns, name)
	}
	var canaries []canary.Canary
	if name != "" {
		cr, err := c.Canaries.Get(ctx, ns, name)
		if err != nil {
			return Request{Command: "get", Verb: "get", Resource: CanaryResource, Namespace: ns, Name: name}.Explain(err)
		}
		canaries = []canary.Canary{*cr}
	} else {
		if canaries, err = c.Canaries.List(ctx, ns); err != nil {
			return Request{Command: "get", Verb: "list", Resource: CanaryResource, Namespace: ns}.Explain(err)
		}
		sortCanaries(canaries)
	}
	switch g.output {
	case "json", "yaml":
		return printObjects(g.Out, g.output, canaries, name != "")
	}
	if len(canaries) == 0 {
		if ns == "" {
			fmt.Fprintln(g.ErrOut, "No canaries found.")
		} else {
			fmt.Fprintf(g.ErrOut, "No canaries found in namespace %s.\n", ns)
		}
		return nil
	}
	return RenderTable(g.Out, canaries, g.tableOptions())
}

func (g *getOptions) tableOptions() TableOptions {
	return TableOptions{AllNamespaces: g.allNamespaces, Wide: g.output == "wide", Now: g.Now()}
}

// printObjects prints canaries as JSON or YAML: the one named, or a List as
// kubectl prints one, without the managed fields.
func printObjects(w io.Writer, format string, canaries []canary.Canary, one bool) error {
	var p printers.ResourcePrinter = &printers.JSONPrinter{}
	if format == "yaml" {
		p = &printers.YAMLPrinter{}
	}
	for i := range canaries {
		canaries[i].ManagedFields = nil
		withKind(&canaries[i])
	}
	if one && len(canaries) == 1 {
		return p.PrintObj(&canaries[0], w)
	}
	list := &corev1.List{Items: make([]runtime.RawExtension, len(canaries))}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("List"))
	for i := range canaries {
		list.Items[i] = runtime.RawExtension{Object: &canaries[i]}
	}
	return p.PrintObj(list, w)
}

// sortCanaries orders canaries by namespace and name.
func sortCanaries(canaries []canary.Canary) {
	slices.SortFunc(canaries, func(a, b canary.Canary) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
}

// fromStore copies the Canaries of an informer's store, in order.
func fromStore(store cache.Store) []canary.Canary {
	var out []canary.Canary
	for _, obj := range store.List() {
		if cr, ok := obj.(*canary.Canary); ok {
			out = append(out, *cr)
		}
	}
	sortCanaries(out)
	return out
}

// follow keeps the table up to date until ctx ends: redrawn in place on a
// terminal (every second too, for the ages), a row per change otherwise.
func (g *getOptions) follow(ctx context.Context, c *Clients, ns, name string) error {
	sel := fields.Everything()
	if name != "" {
		// A watch of a name that does not exist would wait in silence.
		if _, err := c.Canaries.Get(ctx, ns, name); err != nil {
			return Request{Command: "get", Verb: "get", Resource: CanaryResource, Namespace: ns, Name: name}.Explain(err)
		}
		sel = fields.OneTermEqualSelector("metadata.name", name)
	}
	f := newFollower(g.ErrOut)
	store := f.follow(c.Canaries.ListWatch(ns, sel), &canary.Canary{},
		Request{Command: "get --watch", Verb: "list and watch", Resource: CanaryResource, Namespace: ns})
	if err := f.start(ctx); err != nil {
		return err
	}
	live := NewLive(g.Out)
	var tick <-chan time.Time
	if live.Terminal {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	rows := &rowPrinter{out: g.Out}
	for {
		canaries := fromStore(store)
		opts := g.tableOptions()
		if live.Terminal {
			var buf bytes.Buffer
			if err := RenderTable(&buf, canaries, opts); err != nil {
				return err
			}
			live.Show(strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"), "")
		} else if err := rows.print(canaries, opts); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-f.failed:
			return err
		case <-f.changed:
		case <-tick:
		}
	}
}

// rowPrinter prints, outside a terminal, the header once and then the row
// of each canary that changed since its last row; a change of age alone is
// no change. Its columns keep the widths of the first rows, widened as
// needed, so that the rows of later changes line up under the header.
type rowPrinter struct {
	out    io.Writer
	last   map[string]string
	widths []int
}

func (p *rowPrinter) print(canaries []canary.Canary, opts TableOptions) error {
	var batch [][]string
	if p.last == nil {
		p.last = map[string]string{}
		batch = append(batch, header(opts))
	}
	for i := range canaries {
		cr := &canaries[i]
		key := cr.Namespace + "/" + cr.Name
		// The row without its age says whether the canary changed.
		timeless := opts
		timeless.Now = cr.CreationTimestamp.Time
		text := strings.Join(row(cr, timeless), "\t")
		if p.last[key] == text {
			continue
		}
		p.last[key] = text
		batch = append(batch, row(cr, opts))
	}
	for _, cells := range batch {
		for i, cell := range cells {
			if i == len(p.widths) {
				p.widths = append(p.widths, 0)
			}
			p.widths[i] = max(p.widths[i], len(cell))
		}
	}
	var b strings.Builder
	for _, cells := range batch {
		for i, cell := range cells {
			if i == len(cells)-1 {
				b.WriteString(cell + "\n")
			} else {
				fmt.Fprintf(&b, "%-*s", p.widths[i]+3, cell)
			}
		}
	}
	_, err := io.WriteString(p.out, b.String())
	return err
}
