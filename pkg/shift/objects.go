package shift

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"

	networkingv1 "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"sluice.dev/sluice/pkg/canary"
)

// Labels on every object sluice creates.
const (
	managedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "sluice"
)

// Names of the objects sluice creates for Deployment name.
func canaryName(name string) string  { return name + "-canary" }
func primaryName(name string) string { return name + "-primary" }

// ownedBy marks obj as created by sluice for dep, so that deleting dep
// deletes obj.
func ownedBy(dep *appsv1.Deployment, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: dep.Namespace,
		Labels:    map[string]string{managedByLabel: managedBy},
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(dep,
			appsv1.SchemeGroupVersion.WithKind("Deployment"))},
	}
}

// canaryLabels are the primary's selector labels with each value suffixed
// "-canary", so that no Service of the primary selects a canary pod.
func canaryLabels(selector map[string]string) map[string]string {
	out := make(map[string]string, len(selector))
	for k, v := range selector {
		out[k] = canaryValue(v)
	}
	return out
}

// canaryValue suffixes v with -canary, shortening it with a hash where the
// result would pass the 63 characters a label value may have.
func canaryValue(v string) string {
	const suffix, limit = "-canary", 63
	if len(v)+len(suffix) <= limit {
		return v + suffix
	}
	sum := sha256.Sum256([]byte(v))
	hash := hex.EncodeToString(sum[:4])
	return v[:limit-len(suffix)-len(hash)-1] + "-" + hash + suffix
}

// canaryDeployment is the Deployment that runs template as the canary of dep.
func canaryDeployment(dep *appsv1.Deployment, template corev1.PodTemplateSpec, revision string, replicas int32) *appsv1.Deployment {
	selector := dep.Spec.Selector.MatchLabels
	labels := canaryLabels(selector)
	template = *template.DeepCopy()
	template.Labels = maps.Clone(template.Labels)
	if template.Labels == nil {
		template.Labels = map[string]string{}
	}
	maps.Copy(template.Labels, labels)
	meta := ownedBy(dep, canaryName(dep.Name))
	meta.Annotations = map[string]string{canary.AnnotationCanaryRevision: revision}
	return &appsv1.Deployment{
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: template,
			Strategy: dep.Spec.Strategy,
		},
	}
}

// servicePort is the port from the settings, else the first container port,
// else 80.
func servicePort(dep *appsv1.Deployment, s canary.Settings) int32 {
	if s.Port != 0 {
		return s.Port
	}
	for _, c := range dep.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			return p.ContainerPort
		}
	}
	return 80
}

// service selects the pods that selector matches, on port.
func service(dep *appsv1.Deployment, name string, selector map[string]string, port int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: ownedBy(dep, name),
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports: []corev1.ServicePort{{
				Name: "http", Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

// virtualService routes the Deployment's hosts to the primary and the canary
// Services, weight percent to the canary.
func virtualService(dep *appsv1.Deployment, s canary.Settings, weight int32) *istiov1.VirtualService {
	vs := &istiov1.VirtualService{ObjectMeta: ownedBy(dep, dep.Name)}
	vs.Spec.Hosts = append([]string{dep.Name}, s.Hosts...)
	if len(s.Gateways) > 0 {
		vs.Spec.Gateways = append(append([]string{}, s.Gateways...), "mesh")
	}
	vs.Spec.Http = []*networkingv1.HTTPRoute{{
		Route: []*networkingv1.HTTPRouteDestination{
			{Destination: &networkingv1.Destination{Host: primaryName(dep.Name)}, Weight: 100 - weight},
			{Destination: &networkingv1.Destination{Host: canaryName(dep.Name)}, Weight: weight},
		},
	}}
	return vs
}

// weightPatch is a JSON patch that sets the weights of the routes to
// <name>-primary and <name>-canary (short or qualified host names) and
// touches nothing else; nil when they are already right or absent.
func weightPatch(vs *istiov1.VirtualService, name string, weight int32) []map[string]any {
	var ops []map[string]any
	for i, route := range vs.Spec.GetHttp() {
		for j, d := range route.GetRoute() {
			host := d.GetDestination().GetHost()
			var want int32
			switch {
			case isHost(host, primaryName(name), vs.Namespace):
				want = 100 - weight
			case isHost(host, canaryName(name), vs.Namespace):
				want = weight
			default:
				continue
			}
			if d.GetWeight() == want {
				continue
			}
			path := fmt.Sprintf("/spec/http/%d/route/%d", i, j)
			// The test guards against a route list that changed since it was
			// read; "add" also sets a weight of 0, which the API leaves out.
			ops = append(ops,
				map[string]any{"op": "test", "path": path + "/destination/host", "value": host},
				map[string]any{"op": "add", "path": path + "/weight", "value": want})
		}
	}
	return ops
}

// routedWeight is the weight of the route to <name>-canary.
func routedWeight(vs *istiov1.VirtualService, name string) int32 {
	for _, route := range vs.Spec.GetHttp() {
		for _, d := range route.GetRoute() {
			if isHost(d.GetDestination().GetHost(), canaryName(name), vs.Namespace) {
				return d.GetWeight()
			}
		}
	}
	return 0
}

// routes reports whether vs routes to both <name>-primary and <name>-canary.
func routes(vs *istiov1.VirtualService, name string) bool {
	var primary, canary bool
	for _, route := range vs.Spec.GetHttp() {
		for _, d := range route.GetRoute() {
			primary = primary || isHost(d.GetDestination().GetHost(), primaryName(name), vs.Namespace)
			canary = canary || isHost(d.GetDestination().GetHost(), canaryName(name), vs.Namespace)
		}
	}
	return primary && canary
}

// isHost reports whether host names Service svc of namespace ns.
func isHost(host, svc, ns string) bool {
	switch host {
	case svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local":
		return true
	}
	return false
}
