// Package mesh simulates Istio's data plane for sluice's demo and tests.
// It is a simulator, not Istio: no Envoy runs and no pod serves anything.
// Each request is routed by the live weights of the VirtualService that
// serves its host, answered as the destination's Deployment says in its pod
// template (env MESSAGE, ERROR_RATE, LATENCY_MS, CHECKOUT_RATE), and
// counted in Istio's standard telemetry and the shop's checkout counter,
// which a real Prometheus scrapes.
package mesh

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/test/meshsim/telemetry"
)

// The environment variables of a pod template that say how its simulated
// workload answers.
const (
	EnvMessage   = "MESSAGE"
	EnvErrorRate = "ERROR_RATE"
	EnvLatencyMS = "LATENCY_MS"
	// EnvCheckoutRate is the share of successful requests that complete a
	// checkout: the business metric of the demo's custom check.
	EnvCheckoutRate = "CHECKOUT_RATE"
)

// Mesh routes simulated requests.
type Mesh struct {
	reader client.Reader
	tel    *telemetry.Telemetry
}

// New returns a Mesh that reads the cluster through reader, normally a
// cache from NewCache, and records into tel.
func New(reader client.Reader, tel *telemetry.Telemetry) *Mesh {
	return &Mesh{reader: reader, tel: tel}
}

// NewCache starts a cache of what a Mesh reads (VirtualServices, Services
// and Deployments) and waits until it has synced. It runs until ctx ends.
func NewCache(ctx context.Context, cfg *rest.Config) (cache.Cache, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, istiov1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	c, err := cache.New(cfg, cache.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("mesh cache: %w", err)
	}
	for _, obj := range []client.Object{&istiov1.VirtualService{}, &corev1.Service{}, &appsv1.Deployment{}} {
		if _, err := c.GetInformer(ctx, obj); err != nil {
			return nil, fmt.Errorf("mesh cache: watch %T: %w", obj, err)
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("mesh cache: not synced: %w", ctx.Err())
	}
	return c, nil
}

// Answer is the simulated response to one request.
type Answer struct {
	Code int
	Body string
	// Latency is how long the workload takes to answer.
	Latency time.Duration
	// Namespace and Workload name the Deployment that answered; empty when
	// no workload could.
	Namespace, Workload string
	// Checkout: the request completed a checkout.
	Checkout bool
}

// Route sends one request for host through the mesh: to a destination of
// the VirtualService that serves host, picked by the route's weights, and
// answered as that destination's workload would. Answers of a workload are
// recorded in Istio's telemetry, as its sidecar would report them.
func (m *Mesh) Route(ctx context.Context, host string) (Answer, error) {
	vs, err := m.virtualService(ctx, host)
	if err != nil {
		return Answer{}, err
	}
	if vs == nil {
		return Answer{Code: http.StatusNotFound, Body: "no VirtualService serves " + host}, nil
	}
	return m.send(ctx, vs)
}

// send routes one request by the weights of vs.
func (m *Mesh) send(ctx context.Context, vs *istiov1.VirtualService) (Answer, error) {
	dest := pick(vs)
	if dest == "" {
		return Answer{Code: http.StatusServiceUnavailable, Body: "no route"}, nil
	}
	svcName, ns := serviceOf(dest, vs.Namespace)
	svc := &corev1.Service{}
	if err := m.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: svcName}, svc); err != nil {
		return Answer{Code: http.StatusServiceUnavailable, Body: "no healthy upstream"}, client.IgnoreNotFound(err)
	}
	dep, err := m.workload(ctx, svc)
	if err != nil || dep == nil || dep.Status.ReadyReplicas == 0 {
		return Answer{Code: http.StatusServiceUnavailable, Body: "no healthy upstream"}, err
	}
	a := answer(dep)
	m.tel.Record(telemetry.Request{Namespace: ns, Workload: dep.Name, Service: svc.Name, Code: a.Code, Duration: a.Latency, Checkout: a.Checkout})
	return a, nil
}

// virtualService finds the VirtualService whose hosts include host, by its
// full name or by the short name of a Service in its namespace.
func (m *Mesh) virtualService(ctx context.Context, host string) (*istiov1.VirtualService, error) {
	list := &istiov1.VirtualServiceList{}
	// Read-only: every request reads the cache, which need not copy.
	if err := m.reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	for _, vs := range list.Items {
		for _, h := range vs.Spec.GetHosts() {
			if h == host || h+"."+vs.Namespace+".svc.cluster.local" == host {
				return vs, nil
			}
		}
	}
	return nil, nil
}

// pick chooses a destination host of the first HTTP route by its weights.
// A single destination without a weight takes all the traffic, as in Istio.
func pick(vs *istiov1.VirtualService) string {
	routes := vs.Spec.GetHttp()
	if len(routes) == 0 || len(routes[0].GetRoute()) == 0 {
		return ""
	}
	dests := routes[0].GetRoute()
	if len(dests) == 1 {
		return dests[0].GetDestination().GetHost()
	}
	total := int32(0)
	for _, d := range dests {
		total += d.GetWeight()
	}
	if total <= 0 {
		return ""
	}
	n := rand.Int32N(total)
	for _, d := range dests {
		if n < d.GetWeight() {
			return d.GetDestination().GetHost()
		}
		n -= d.GetWeight()
	}
	return ""
}

// serviceOf splits a destination host (name, name.ns, or
// name.ns.svc.cluster.local) into the Service's name and namespace.
func serviceOf(host, defaultNamespace string) (name, namespace string) {
	name, rest, _ := strings.Cut(host, ".")
	namespace, _, _ = strings.Cut(rest, ".")
	if namespace == "" {
		namespace = defaultNamespace
	}
	return name, namespace
}

// workload is the Deployment whose pods svc selects.
func (m *Mesh) workload(ctx context.Context, svc *corev1.Service) (*appsv1.Deployment, error) {
	if len(svc.Spec.Selector) == 0 {
		return nil, nil
	}
	list := &appsv1.DeploymentList{}
	if err := m.reader.List(ctx, list, client.InNamespace(svc.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	selector := labels.SelectorFromSet(svc.Spec.Selector)
	for i := range list.Items {
		if selector.Matches(labels.Set(list.Items[i].Spec.Template.Labels)) {
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

// answer is how the running version of dep answers one request.
func answer(dep *appsv1.Deployment) Answer {
	a := Answer{Code: http.StatusOK, Body: "hello", Namespace: dep.Namespace, Workload: dep.Name}
	if cs := dep.Spec.Template.Spec.Containers; len(cs) > 0 {
		var errorRate, checkoutRate float64
		for _, e := range cs[0].Env {
			switch e.Name {
			case EnvMessage:
				a.Body = e.Value
			case EnvErrorRate:
				errorRate, _ = strconv.ParseFloat(e.Value, 64)
			case EnvLatencyMS:
				ms, _ := strconv.Atoi(e.Value)
				a.Latency = time.Duration(ms) * time.Millisecond
			case EnvCheckoutRate:
				checkoutRate, _ = strconv.ParseFloat(e.Value, 64)
			}
		}
		if rand.Float64() < errorRate {
			a.Code, a.Body = http.StatusInternalServerError, "simulated failure"
		} else {
			a.Checkout = rand.Float64() < checkoutRate
		}
	}
	return a
}

// ServeHTTP answers a request for the host in its Host header, after the
// workload's latency.
func (m *Mesh) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	a, err := m.Route(r.Context(), host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	select {
	case <-time.After(a.Latency):
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(a.Code)
	fmt.Fprintln(w, a.Body)
}

// Generate sends rps requests per second through every VirtualService, without HTTP and without waiting out the latency, so that
// analysis has telemetry without a client. It runs until ctx ends.
func (m *Mesh) Generate(ctx context.Context, rps int) {
	const ticks = 10 // per second
	tick := time.NewTicker(time.Second / ticks)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		list := &istiov1.VirtualServiceList{}
		if err := m.reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
			continue
		}
		// Spread rps over the ticks of a second, the remainder on the first.
		count := rps / ticks
		if n%ticks == 0 {
			count += rps % ticks
		}
		for _, vs := range list.Items {
			for range count {
				_, _ = m.send(ctx, vs)
			}
		}
	}
}
