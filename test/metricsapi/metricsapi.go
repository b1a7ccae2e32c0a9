// Package metricsapi stands in, in tests, for an external metrics adapter
// (KEDA's metrics server, prometheus-adapter's external rules): an HTTPS
// server on loopback that serves external.metrics.k8s.io/v1beta1 with the
// values a test sets, registered with the API server's aggregation layer, so
// that the real HPA controller in kube-controller-manager reads them through
// the API server exactly as it would read an adapter's.
//
// The APIService points at a Service of type ExternalName with externalName
// localhost: the aggregator resolves such a Service to
// https://localhost:<the APIService's port>, whereas Endpoints may not point
// at loopback. It verifies the server's certificate for
// <service>.<namespace>.svc against the APIService's caBundle, which Start
// fills with a CA of its own. The APIService is cluster-wide: one stand-in per
// cluster at a time.
//
//	m, err := metricsapi.Start(ctx, env.AdminConfig())
//	defer m.Close()
//	m.Set(ns, "queue_messages", map[string]string{"queue": "orders"}, resource.MustParse("40"))
package metricsapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	apiregistrationv1ac "k8s.io/kube-aggregator/pkg/client/applyconfiguration/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	externalmetrics "k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	"k8s.io/utils/ptr"

	"sluice.dev/sluice/certs"
)

const (
	// serviceNamespace and serviceName name the ExternalName Service that the
	// APIService points at, as metrics-server's lives in kube-system.
	serviceNamespace = "kube-system"
	serviceName      = "sluice-external-metrics"
	fieldManager     = "sluice-metricsapi"
	// availableTimeout bounds the wait for the aggregator to check the
	// server and route to it.
	availableTimeout = time.Minute
)

var (
	apiServiceName   = externalmetrics.SchemeGroupVersion.Version + "." + externalmetrics.SchemeGroupVersion.Group
	groupVersionPath = "/apis/" + externalmetrics.SchemeGroupVersion.String()
	// encoder writes the API's objects as JSON with their apiVersion and kind,
	// metav1's (the discovery list, Status) included.
	encoder = func() runtime.Encoder {
		scheme := runtime.NewScheme()
		utilruntime.Must(externalmetrics.AddToScheme(scheme))
		return serializer.NewCodecFactory(scheme).LegacyCodec(externalmetrics.SchemeGroupVersion)
	}()
)

// Server is a running external metrics API.
type Server struct {
	mu     sync.Mutex
	series map[seriesKey]series

	http       *http.Server
	served     chan struct{} // closed when http stops serving, with serveErr
	serveErr   error
	core       kubernetes.Interface
	aggregator aggregator.Interface
}

type seriesKey struct{ namespace, metric, labels string }

type series struct {
	labels map[string]string
	value  resource.Quantity
}

func newServer() *Server { return &Server{series: map[seriesKey]series{}} }

// Start serves the external metrics API on a free loopback port, registers it
// with the API server that cfg (a cluster admin) points at, replacing an
// earlier registration, and waits until the API server routes requests to it.
// ctx bounds only that; the server runs until Close.
func Start(ctx context.Context, cfg *rest.Config) (_ *Server, err error) {
	s := newServer()
	if s.core, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("external metrics API: %w", err)
	}
	if s.aggregator, err = aggregator.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("external metrics API: %w", err)
	}
	ca, err := certs.NewCA(serviceName + "-ca")
	if err != nil {
		return nil, fmt.Errorf("external metrics API: %w", err)
	}
	kp, err := ca.Issue(certs.Request{CommonName: serviceName, Hosts: []string{serviceName + "." + serviceNamespace + ".svc"}})
	if err != nil {
		return nil, fmt.Errorf("external metrics API: %w", err)
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("external metrics API: serving certificate: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("external metrics API: %w", err)
	}
	s.http = &http.Server{
		Handler:           s.handler(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 5 * time.Second,
	}
	s.served = make(chan struct{})
	go func() {
		s.serveErr = s.http.ServeTLS(ln, "", "")
		close(s.served)
	}()
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	if err := s.register(ctx, int32(ln.Addr().(*net.TCPAddr).Port), ca.CertPEM()); err != nil {
		return nil, fmt.Errorf("external metrics API: %w", err)
	}
	return s, nil
}

func (s *Server) register(ctx context.Context, port int32, caBundle []byte) error {
	apply := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	svc := corev1ac.Service(serviceName, serviceNamespace).WithSpec(corev1ac.ServiceSpec().
		WithType(corev1.ServiceTypeExternalName).WithExternalName("localhost"))
	if _, err := s.core.CoreV1().Services(serviceNamespace).Apply(ctx, svc, apply); err != nil {
		return fmt.Errorf("apply Service %s/%s: %w", serviceNamespace, serviceName, err)
	}
	gv := externalmetrics.SchemeGroupVersion
	apiService := apiregistrationv1ac.APIService(apiServiceName).WithSpec(apiregistrationv1ac.APIServiceSpec().
		WithGroup(gv.Group).WithVersion(gv.Version).
		WithService(apiregistrationv1ac.ServiceReference().WithNamespace(serviceNamespace).WithName(serviceName).WithPort(port)).
		WithCABundle(caBundle...).
		// The values metrics-server and the adapters use.
		WithGroupPriorityMinimum(100).WithVersionPriority(100))
	if _, err := s.aggregator.ApiregistrationV1().APIServices().Apply(ctx, apiService, apply); err != nil {
		return fmt.Errorf("apply APIService %s: %w", apiServiceName, err)
	}
	// Available may still be the verdict on an earlier registration, so the
	// discovery document is also read through the API server: only this
	// server can answer it once the aggregator routes to the new port.
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, availableTimeout, true, func(ctx context.Context) (bool, error) {
		last = s.routed(ctx)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("APIService %s not routed to 127.0.0.1:%d within %s: %w", apiServiceName, port, availableTimeout, errors.Join(err, last))
	}
	return nil
}

func (s *Server) routed(ctx context.Context) error {
	got, err := s.aggregator.ApiregistrationV1().APIServices().Get(ctx, apiServiceName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	i := slices.IndexFunc(got.Status.Conditions, func(c apiregistrationv1.APIServiceCondition) bool {
		return c.Type == apiregistrationv1.Available
	})
	if i < 0 {
		return errors.New("no Available condition yet")
	}
	if c := got.Status.Conditions[i]; c.Status != apiregistrationv1.ConditionTrue {
		return fmt.Errorf("condition Available is %s: %s: %s", c.Status, c.Reason, c.Message)
	}
	_, err = s.core.Discovery().RESTClient().Get().AbsPath(groupVersionPath).DoRaw(ctx)
	return err
}

// Close unregisters the API and stops the server. The APIService goes first:
// one that the aggregator finds unavailable fails discovery, which stalls the
// namespace controller's deletions cluster-wide.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	if err := s.aggregator.ApiregistrationV1().APIServices().Delete(ctx, apiServiceName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete APIService %s: %w", apiServiceName, err))
	}
	if err := s.core.CoreV1().Services(serviceNamespace).Delete(ctx, serviceName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete Service %s/%s: %w", serviceNamespace, serviceName, err))
	}
	if err := s.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stop external metrics API: %w", err))
	}
	// Shutdown closes the listener first, so serving has ended or soon ends.
	<-s.served
	if !errors.Is(s.serveErr, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("external metrics API: %w", s.serveErr))
	}
	return errors.Join(errs...)
}

// Set gives the series of metric in namespace with metricLabels the value,
// replacing the series' earlier value. A request gets the metric's series
// whose labels its label selector matches; the HPA controller adds up their
// values.
func (s *Server) Set(namespace, metric string, metricLabels map[string]string, value resource.Quantity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.series[seriesKey{namespace, metric, labels.Set(metricLabels).String()}] = series{labels: maps.Clone(metricLabels), value: value}
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	// The aggregator reads this for discovery (after /apis, which a 404 here
	// makes it skip) and for its availability check.
	mux.HandleFunc("GET "+groupVersionPath, s.serveDiscovery)
	mux.HandleFunc("GET "+groupVersionPath+"/namespaces/{namespace}/{metric}", s.serveMetric)
	// The aggregator merges every APIService's OpenAPI document into its own
	// and, finding none, retries and logs an error each time.
	mux.HandleFunc("GET /openapi/v2", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", runtime.ContentTypeJSON)
		_, _ = w.Write([]byte(openAPIv2))
	})
	return mux
}

// openAPIv2 describes no path: nothing reads the stand-in's schema.
const openAPIv2 = `{"swagger":"2.0","info":{"title":"sluice external metrics stand-in","version":"v1beta1"},"paths":{}}`

func (s *Server) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	var names []string
	for k := range s.series {
		names = append(names, k.metric)
	}
	s.mu.Unlock()
	slices.Sort(names)
	list := &metav1.APIResourceList{GroupVersion: externalmetrics.SchemeGroupVersion.String(), APIResources: []metav1.APIResource{}}
	for _, name := range slices.Compact(names) {
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: name, Namespaced: true, Kind: "ExternalMetricValueList", Verbs: metav1.Verbs{"get"},
		})
	}
	write(w, http.StatusOK, list)
}

func (s *Server) serveMetric(w http.ResponseWriter, r *http.Request) {
	selector, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		write(w, http.StatusBadRequest, &apierrors.NewBadRequest(err.Error()).ErrStatus)
		return
	}
	namespace, metric := r.PathValue("namespace"), r.PathValue("metric")
	list := &externalmetrics.ExternalMetricValueList{Items: []externalmetrics.ExternalMetricValue{}}
	now := metav1.Now()
	s.mu.Lock()
	for k, v := range s.series {
		if k.namespace == namespace && k.metric == metric && selector.Matches(labels.Set(v.labels)) {
			list.Items = append(list.Items, externalmetrics.ExternalMetricValue{
				MetricName: metric, MetricLabels: v.labels, Timestamp: now, Value: v.value,
			})
		}
	}
	s.mu.Unlock()
	write(w, http.StatusOK, list)
}

func write(w http.ResponseWriter, code int, obj runtime.Object) {
	raw, err := runtime.Encode(encoder, obj)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", runtime.ContentTypeJSON)
	w.WriteHeader(code)
	_, _ = w.Write(raw)
}

// Autoscaler is a HorizontalPodAutoscaler of Deployment name that keeps the
// sum of metric's series matching selector at averageValue per replica, with
// 1 to 10 replicas. It scales down without a stabilization window, so that a
// test sees a lower value take effect at the next sync.
func Autoscaler(namespace, name, metric string, selector map[string]string, averageValue string) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    ptr.To[int32](1),
			MaxReplicas:    10,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ExternalMetricSourceType,
				External: &autoscalingv2.ExternalMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: metric, Selector: &metav1.LabelSelector{MatchLabels: selector}},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr.To(resource.MustParse(averageValue))},
				},
			}},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](0)},
			},
		},
	}
}
