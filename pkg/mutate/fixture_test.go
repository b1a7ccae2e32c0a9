package mutate_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/mutate"
)

// The fixtures model what the API server sends a webhook: typed objects after
// defaulting (the API server's defaulting code, k8s.io/kubernetes, is not a
// dependency, so the defaulted fields are set by hand), serialised with
// encoding/json as the API server does.

const (
	fixtureName      = "storefront"
	fixtureNamespace = "shop"
	fixtureUID       = types.UID("9b0c7a52-3f1e-4c8e-9d4a-5e2f1b6c7d80")
	reviewUID        = types.UID("1f6e2d8c-7a45-4b3e-8c19-0d2a6b9e4f37")
)

var fixtureCreated = metav1.NewTime(time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC))

// envVars returns n plain environment variables named prefix_0..prefix_n-1.
func envVars(prefix string, n int) []corev1.EnvVar {
	env := make([]corev1.EnvVar, 0, n)
	for i := range n {
		env = append(env, corev1.EnvVar{
			Name:  fmt.Sprintf("%s_SETTING_%02d", prefix, i),
			Value: fmt.Sprintf("https://%s-upstream-%02d.shop.svc.cluster.local:8443/api/v2?timeout=5s", strings.ToLower(prefix), i),
		})
	}
	return env
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path},
	}}
}

func secretEnv(name, secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key},
	}}
}

// httpProbe is an HTTP probe with the API server's defaults filled in.
func httpProbe(path string, port int32, initialDelay int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP,
		}},
		InitialDelaySeconds: initialDelay,
		TimeoutSeconds:      1,
		PeriodSeconds:       10,
		SuccessThreshold:    1,
		FailureThreshold:    3,
	}
}

func resources(cpuReq, memReq, cpuLim, memLim string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(cpuReq),
			corev1.ResourceMemory: resource.MustParse(memReq),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(cpuLim),
			corev1.ResourceMemory: resource.MustParse(memLim),
		},
	}
}

// defaultedContainer fills in what the API server defaults on a container.
func defaultedContainer(c corev1.Container) corev1.Container {
	c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	c.ImagePullPolicy = corev1.PullIfNotPresent
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
	return c
}

// testDeployment returns an opted-in Deployment of three containers, as the
// API server stores it (defaulted, with status); its JSON is about 10 KB.
func testDeployment() *appsv1.Deployment {
	labels := map[string]string{
		"app":                          fixtureName,
		"app.kubernetes.io/name":       fixtureName,
		"app.kubernetes.io/instance":   fixtureName + "-prod",
		"app.kubernetes.io/part-of":    "shop",
		"app.kubernetes.io/managed-by": "kubectl",
		"team":                         "checkout",
	}
	selector := map[string]string{"app": fixtureName}
	podLabels := map[string]string{"app": fixtureName, "team": "checkout", "version": "v2"}

	appEnv := append(envVars("STOREFRONT", 14),
		fieldEnv("POD_NAME", "metadata.name"),
		fieldEnv("POD_NAMESPACE", "metadata.namespace"),
		fieldEnv("POD_IP", "status.podIP"),
		secretEnv("DATABASE_PASSWORD", "storefront-db", "password"),
		secretEnv("SESSION_KEY", "storefront-session", "key"),
	)
	app := defaultedContainer(corev1.Container{
		Name:  "storefront",
		Image: "registry.example.com/shop/storefront:2.14.1",
		Args:  []string{"--config=/etc/storefront/config.yaml", "--listen=:8080", "--metrics-listen=:9090"},
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: 8080},
			{Name: "metrics", ContainerPort: 9090},
		},
		Env:            appEnv,
		Resources:      resources("500m", "512Mi", "2", "1Gi"),
		LivenessProbe:  httpProbe("/healthz", 8080, 10),
		ReadinessProbe: httpProbe("/readyz", 8080, 5),
		StartupProbe:   httpProbe("/healthz", 8080, 0),
		Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"/bin/sh", "-c", "sleep 10"}},
		}},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "config", MountPath: "/etc/storefront", ReadOnly: true},
			{Name: "tls", MountPath: "/etc/tls", ReadOnly: true},
			{Name: "cache", MountPath: "/var/cache/storefront"},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(true),
			RunAsUser:                ptr.To[int64](10001),
			ReadOnlyRootFilesystem:   ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	})
	shipper := defaultedContainer(corev1.Container{
		Name:  "log-shipper",
		Image: "registry.example.com/infra/log-shipper:1.8.3",
		Args:  []string{"--input=/var/log/storefront", "--output=loki"},
		Env: append(envVars("SHIPPER", 6),
			fieldEnv("NODE_NAME", "spec.nodeName")),
		Resources:      resources("50m", "64Mi", "200m", "128Mi"),
		LivenessProbe:  httpProbe("/health", 2020, 15),
		ReadinessProbe: httpProbe("/health", 2020, 5),
		Ports:          []corev1.ContainerPort{{Name: "shipper-http", ContainerPort: 2020}},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "logs", MountPath: "/var/log/storefront", ReadOnly: true},
			{Name: "shipper-config", MountPath: "/etc/shipper", ReadOnly: true},
		},
	})
	exporter := defaultedContainer(corev1.Container{
		Name:           "metrics-exporter",
		Image:          "registry.example.com/infra/exporter:0.31.0",
		Env:            envVars("EXPORTER", 5),
		Resources:      resources("20m", "32Mi", "100m", "64Mi"),
		LivenessProbe:  httpProbe("/", 9113, 0),
		ReadinessProbe: httpProbe("/", 9113, 0),
		Ports:          []corev1.ContainerPort{{Name: "exporter", ContainerPort: 9113}},
		VolumeMounts:   []corev1.VolumeMount{{Name: "cache", MountPath: "/var/cache/storefront", ReadOnly: true}},
	})

	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              fixtureName,
			Namespace:         fixtureNamespace,
			UID:               fixtureUID,
			ResourceVersion:   "48213377",
			Generation:        7,
			CreationTimestamp: fixtureCreated,
			Labels:            labels,
			Annotations: map[string]string{
				canary.AnnotationEnabled:            canary.EnabledValue,
				"deployment.kubernetes.io/revision": "7",
			},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels: podLabels,
					Annotations: map[string]string{
						"prometheus.io/scrape": "true",
						"prometheus.io/port":   "9090",
						"checksum/config":      "5f0c1e3b8a9d2f4e6c7b1a0d3e5f7a9b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f",
					},
				},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{app, shipper, exporter},
					Volumes: []corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: "storefront-config"},
							DefaultMode:          ptr.To[int32](corev1.ConfigMapVolumeSourceDefaultMode),
						}}},
						{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
							SecretName:  "storefront-tls",
							DefaultMode: ptr.To[int32](corev1.SecretVolumeSourceDefaultMode),
						}}},
						{Name: "shipper-config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: "log-shipper"},
							DefaultMode:          ptr.To[int32](corev1.ConfigMapVolumeSourceDefaultMode),
						}}},
						{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "logs", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
					RestartPolicy:                 corev1.RestartPolicyAlways,
					TerminationGracePeriodSeconds: ptr.To[int64](corev1.DefaultTerminationGracePeriodSeconds),
					DNSPolicy:                     corev1.DNSClusterFirst,
					ServiceAccountName:            fixtureName,
					DeprecatedServiceAccount:      fixtureName,
					SecurityContext:               &corev1.PodSecurityContext{FSGroup: ptr.To[int64](10001)},
					SchedulerName:                 corev1.DefaultSchedulerName,
					NodeSelector:                  map[string]string{"kubernetes.io/os": "linux", "node.example.com/pool": "general"},
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
							Weight: 100,
							PodAffinityTerm: corev1.PodAffinityTerm{
								LabelSelector: &metav1.LabelSelector{MatchLabels: selector},
								TopologyKey:   "kubernetes.io/hostname",
							},
						}},
					}},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew:           1,
						TopologyKey:       "topology.kubernetes.io/zone",
						WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector:     &metav1.LabelSelector{MatchLabels: selector},
					}},
					Tolerations: []corev1.Toleration{{
						Key: "node.example.com/dedicated", Operator: corev1.TolerationOpEqual, Value: "shop", Effect: corev1.TaintEffectNoSchedule,
					}},
					EnableServiceLinks: ptr.To(true),
				},
			},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromString("25%")),
					MaxSurge:       ptr.To(intstr.FromString("25%")),
				},
			},
			RevisionHistoryLimit:    ptr.To[int32](10),
			ProgressDeadlineSeconds: ptr.To[int32](600),
		},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration:  7,
			Replicas:            3,
			UpdatedReplicas:     3,
			ReadyReplicas:       3,
			AvailableReplicas:   3,
			TerminatingReplicas: ptr.To[int32](0),
			Conditions: []appsv1.DeploymentCondition{
				{
					Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
					LastUpdateTime: fixtureCreated, LastTransitionTime: fixtureCreated,
					Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability.",
				},
				{
					Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
					LastUpdateTime: fixtureCreated, LastTransitionTime: fixtureCreated,
					Reason: "NewReplicaSetAvailable", Message: `ReplicaSet "storefront-7d9c8b6f5d" has successfully progressed.`,
				},
			},
		},
	}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal %T: %v", v, err)
	}
	return b
}

// admissionRequest is the request part of a review of a Deployment by alice.
// old may be nil (for a CREATE).
func admissionRequest(tb testing.TB, op admissionv1.Operation, old, obj *appsv1.Deployment) admissionv1.AdmissionRequest {
	tb.Helper()
	deployments := metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	kind := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	req := admissionv1.AdmissionRequest{
		UID:             reviewUID,
		Kind:            kind,
		Resource:        deployments,
		RequestKind:     &kind,
		RequestResource: &deployments,
		Name:            obj.Name,
		Namespace:       obj.Namespace,
		Operation:       op,
		UserInfo: authenticationv1.UserInfo{
			Username: "alice",
			UID:      "4b8f5a1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
			Groups:   []string{"developers", "system:authenticated"},
		},
		Object: runtime.RawExtension{Raw: mustJSON(tb, obj)},
		DryRun: ptr.To(false),
	}
	switch op {
	case admissionv1.Update:
		req.Options = runtime.RawExtension{Raw: mustJSON(tb, &metav1.UpdateOptions{
			TypeMeta:     metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "UpdateOptions"},
			FieldManager: "kubectl-client-side-apply",
		})}
	case admissionv1.Create:
		req.Options = runtime.RawExtension{Raw: mustJSON(tb, &metav1.CreateOptions{
			TypeMeta:     metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "CreateOptions"},
			FieldManager: "kubectl-client-side-apply",
		})}
	}
	if old != nil {
		req.OldObject = runtime.RawExtension{Raw: mustJSON(tb, old)}
	}
	return req
}

// reviewBody is the HTTP body of an AdmissionReview carrying req.
func reviewBody(tb testing.TB, req admissionv1.AdmissionRequest) []byte {
	tb.Helper()
	return mustJSON(tb, &admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req,
	})
}

// updateReview is the body of an AdmissionReview of an UPDATE of old to obj
// by alice.
func updateReview(tb testing.TB, old, obj *appsv1.Deployment) []byte {
	tb.Helper()
	return reviewBody(tb, admissionRequest(tb, admissionv1.Update, old, obj))
}

// divertingUpdate returns a stored Deployment and an update of it that
// changes only the image of one container: sluice diverts it to a canary.
func divertingUpdate() (old, obj *appsv1.Deployment) {
	old = testDeployment()
	obj = old.DeepCopy()
	obj.Spec.Template.Spec.Containers[0].Image = "registry.example.com/shop/storefront:2.15.0"
	return old, obj
}

// passingUpdate returns a stored Deployment and an update of it that changes
// only the replicas: sluice lets it through unchanged.
func passingUpdate() (old, obj *appsv1.Deployment) {
	old = testDeployment()
	obj = old.DeepCopy()
	obj.Spec.Replicas = ptr.To[int32](5)
	return old, obj
}

// divertingBody is the AdmissionReview body of divertingUpdate.
func divertingBody(tb testing.TB) []byte {
	tb.Helper()
	old, obj := divertingUpdate()
	return updateReview(tb, old, obj)
}

// passingBody is the AdmissionReview body of passingUpdate.
func passingBody(tb testing.TB) []byte {
	tb.Helper()
	old, obj := passingUpdate()
	return updateReview(tb, old, obj)
}

// TestFixture checks that the fixtures are what the benchmarks claim.
func TestFixture(t *testing.T) {
	d := testDeployment()
	size := len(mustJSON(t, d))
	if size < 8<<10 || size > 12<<10 {
		t.Errorf("the Deployment's JSON is %d bytes, want about 10 KB", size)
	}
	env := 0
	for _, c := range d.Spec.Template.Spec.Containers {
		env += len(c.Env)
	}
	if n := len(d.Spec.Template.Spec.Containers); n != 3 || env < 28 || env > 32 {
		t.Errorf("%d containers with %d env vars, want 3 with about 30", n, env)
	}
	t.Logf("Deployment: %d bytes of JSON, %d env vars; diverting review: %d bytes, passing review: %d bytes",
		size, env, len(divertingBody(t)), len(passingBody(t)))
}

// setLogger stands in for cmd/webhook's ctrl.SetLogger. Until it is called,
// controller-runtime's root logger keeps a promise for every logger derived
// from it, and the webhook derives one per request: without it, a benchmark
// measures that growing tree (and the garbage collector walking it).
var setLogger sync.Once

// newWebhook is the webhook as Serve registers it, with metrics on a private
// registry, no logging, and policies read from a fake API server that holds
// policies.
func newWebhook(defaults canary.Defaults, policies ...client.Object) *webhook.Admission {
	return webhookWith(defaults, mutate.PolicyReaders{Cache: policyReader(policies...)})
}

// policyReader is a fake API server that holds policies.
func policyReader(policies ...client.Object) client.Reader {
	scheme := runtime.NewScheme()
	if err := canary.AddToScheme(scheme); err != nil {
		panic(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(policies...).Build()
}

// webhookWith is the webhook as Serve registers it, reading policies from
// readers.
func webhookWith(defaults canary.Defaults, readers mutate.PolicyReaders) *webhook.Admission {
	setLogger.Do(func() { ctrllog.SetLogger(logr.New(ctrllog.NullLogSink{})) })
	return mutate.NewWebhook(mutate.NewHandler([]string{"system:serviceaccount:sluice-system:sluice"}, defaults, readers,
		mutate.NewMetrics(prometheus.NewRegistry()), logr.Discard()))
}

func newReviewRequest(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, mutate.Path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// serve posts body to wh and decodes the response it writes.
func serve(tb testing.TB, wh http.Handler, body []byte) *admissionv1.AdmissionReview {
	tb.Helper()
	rec := httptest.NewRecorder()
	wh.ServeHTTP(rec, newReviewRequest(body))
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
		tb.Fatalf("the response is not an AdmissionReview: %v\n%s", err, rec.Body.Bytes())
	}
	if review.Response == nil {
		tb.Fatalf("the AdmissionReview has no response:\n%s", rec.Body.Bytes())
	}
	return &review
}
