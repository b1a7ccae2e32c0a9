package mesh

import (
	"cmp"
	"context"
	"slices"
	"sync"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// rulesFor is the table of what serves host: the VirtualService that does,
// if any; else the HTTPRoutes that do, merged by the Gateway API's
// precedence. found is false when nothing serves host.
func (m *Mesh) rulesFor(ctx context.Context, host string) (rules []rule, found bool, err error) {
	vss, err := m.virtualServices(ctx)
	if err != nil {
		return nil, false, err
	}
	for _, vs := range vss {
		if servesVirtualService(vs, host) {
			return m.virtualServiceRules(vs), true, nil
		}
	}
	hrs, err := m.httpRoutes(ctx)
	if err != nil {
		return nil, false, err
	}
	var serving []*gatewayv1.HTTPRoute
	for i := range hrs {
		if servesHTTPRoute(&hrs[i], host) {
			serving = append(serving, &hrs[i])
		}
	}
	if len(serving) == 0 {
		return nil, false, nil
	}
	if len(serving) == 1 {
		return m.httpRouteRules(serving[0]), true, nil
	}
	slices.SortFunc(serving, olderFirst)
	tables := make([][]rule, len(serving))
	for i, hr := range serving {
		tables[i] = m.httpRouteRules(hr)
	}
	return mergeRules(tables...), true, nil
}

// olderFirst is the Gateway API's order of routes whose matches tie: the
// older, then by namespace and name.
func olderFirst(a, b *gatewayv1.HTTPRoute) int {
	return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time),
		cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// stream is a route object that background load goes through, as a
// client of host would.
type stream struct {
	host  string
	rules []rule
}

// streams is one stream per VirtualService and per HTTPRoute. An HTTPRoute
// goes by its own rules (not merged with other routes of its hosts), and
// gets no stream when VirtualServices serve all its hosts, or when it has
// none a client can name (only wildcards and Gateways): no client reaches
// it then.
func (m *Mesh) streams(ctx context.Context) ([]stream, error) {
	vss, err := m.virtualServices(ctx)
	if err != nil {
		return nil, err
	}
	hrs, err := m.httpRoutes(ctx)
	if err != nil {
		return nil, err
	}
	var out []stream
	for _, vs := range vss {
		if hosts := vs.Spec.GetHosts(); len(hosts) > 0 {
			out = append(out, stream{host: hosts[0], rules: m.virtualServiceRules(vs)})
		}
	}
	for i := range hrs {
		if host, ok := reachable(&hrs[i], vss); ok {
			out = append(out, stream{host: host, rules: m.httpRouteRules(&hrs[i])})
		}
	}
	return out, nil
}

// reachable is a host of hr that no VirtualService takes from it.
func reachable(hr *gatewayv1.HTTPRoute, vss []*istiov1.VirtualService) (string, bool) {
	for _, host := range httpRouteHosts(hr) {
		if !slices.ContainsFunc(vss, func(vs *istiov1.VirtualService) bool { return servesVirtualService(vs, host) }) {
			return host, true
		}
	}
	return "", false
}

func (m *Mesh) virtualServiceRules(vs *istiov1.VirtualService) []rule {
	key := tableKey{kind: "VirtualService", namespace: vs.Namespace, name: vs.Name, uid: vs.UID}
	return m.tables.get(key, vs.ResourceVersion, func() []rule { return istioRules(vs) })
}

func (m *Mesh) httpRouteRules(hr *gatewayv1.HTTPRoute) []rule {
	key := tableKey{kind: "HTTPRoute", namespace: hr.Namespace, name: hr.Name, uid: hr.UID}
	return m.tables.get(key, hr.ResourceVersion, func() []rule { return gatewayRules(hr) })
}

// tables remembers the table of each route object until it changes, so
// that routing a request compiles no regular expression. The tables are
// shared and read-only.
type tables struct {
	mu      sync.Mutex
	byRoute map[tableKey]table
}

type tableKey struct {
	kind, namespace, name string
	uid                   types.UID
}

type table struct {
	resourceVersion string
	rules           []rule
}

// maxTables bounds what routes long deleted keep: past it, every table is
// forgotten and built again when next needed.
const maxTables = 4096

func (t *tables) get(key tableKey, resourceVersion string, build func() []rule) []rule {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byRoute[key]; ok && e.resourceVersion == resourceVersion {
		return e.rules
	}
	if t.byRoute == nil || len(t.byRoute) >= maxTables {
		t.byRoute = map[tableKey]table{}
	}
	rules := build()
	t.byRoute[key] = table{resourceVersion: resourceVersion, rules: rules}
	return rules
}
