package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"sluice.dev/sluice/pkg/canary"
)

// CanaryResource is the Canaries' resource as RBAC and error messages name it.
const CanaryResource = "canaries.sluice.dev"

// Clients reach the cluster that the kubectl flags name.
type Clients struct {
	// Kube is for the Deployments and events.
	Kube kubernetes.Interface
	// Canaries is for sluice's Canaries.
	Canaries *CanaryClient
	// Namespace is the namespace of --namespace, or else of the kubeconfig's
	// context ("default" when it names none).
	Namespace string
}

// Clients connects to the cluster of the kubectl flags (--kubeconfig,
// --context, --namespace, --request-timeout, ...). It asks the API server
// nothing: no discovery, so that a user who may only read canaries can use
// every read command.
func (o *Options) Clients() (*Clients, error) {
	cfg, err := o.Flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := o.Flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: namespace: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	canaries, err := NewCanaryClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Clients{Kube: kube, Canaries: canaries, Namespace: ns}, nil
}

// CanaryClient reads and writes sluice's Canaries (sluice.dev/v1alpha1).
type CanaryClient struct {
	rest rest.Interface
}

// scheme knows sluice's types, for the Canary client's codecs.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := canary.AddToScheme(s); err != nil {
		panic(err) // only a programming error: a type registered twice
	}
	return s
}()

// NewCanaryClient returns a client of the Canaries of the cluster cfg
// reaches.
func NewCanaryClient(cfg *rest.Config) (*CanaryClient, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &canary.GroupVersion
	c.APIPath = "/apis"
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("canary client: %w", err)
	}
	return &CanaryClient{rest: rc}, nil
}

// REST is the REST client of sluice.dev/v1alpha1, for requests the other
// methods do not make.
func (c *CanaryClient) REST() rest.Interface { return c.rest }

// Get reads the Canary namespace/name.
func (c *CanaryClient) Get(ctx context.Context, namespace, name string) (*canary.Canary, error) {
	cr := &canary.Canary{}
	err := c.rest.Get().Namespace(namespace).Resource("canaries").Name(name).Do(ctx).Into(cr)
	if err != nil {
		return nil, err
	}
	return withKind(cr), nil
}

// List reads the Canaries of namespace, or of every namespace for "".
func (c *CanaryClient) List(ctx context.Context, namespace string) ([]canary.Canary, error) {
	list := &canary.CanaryList{}
	if err := c.rest.Get().Namespace(namespace).Resource("canaries").Do(ctx).Into(list); err != nil {
		return nil, err
	}
	for i := range list.Items {
		withKind(&list.Items[i])
	}
	return list.Items, nil
}

// Patch patches the Canary namespace/name (subresource "" or "status") and
// returns it as the API server wrote it.
func (c *CanaryClient) Patch(ctx context.Context, namespace, name string, pt types.PatchType, data []byte,
	subresource ...string) (*canary.Canary, error) {
	cr := &canary.Canary{}
	err := c.rest.Patch(pt).Namespace(namespace).Resource("canaries").Name(name).SubResource(subresource...).
		Body(data).Do(ctx).Into(cr)
	if err != nil {
		return nil, err
	}
	return withKind(cr), nil
}

// ListWatch lists and watches the Canaries of namespace ("" for all) that
// match sel, for an informer.
func (c *CanaryClient) ListWatch(namespace string, sel fields.Selector) cache.ListerWatcher {
	return cache.NewListWatchFromClient(c.rest, "canaries", namespace, sel)
}

// withKind sets the apiVersion and kind that decoding leaves out, so that
// -o json and -o yaml print them.
func withKind(cr *canary.Canary) *canary.Canary {
	cr.SetGroupVersionKind(canary.GroupVersion.WithKind("Canary"))
	return cr
}

// EventSelector selects the events about the sluice Canary name: by its
// apiVersion too, since Flagger's Canaries have the same kind.
func EventSelector(name string) fields.Selector {
	return fields.Set{
		"involvedObject.kind":       "Canary",
		"involvedObject.apiVersion": canary.GroupVersion.String(),
		"involvedObject.name":       name,
	}.AsSelector()
}

// ListEvents reads the events about the Canary namespace/name.
func (c *Clients) ListEvents(ctx context.Context, namespace, name string) ([]corev1.Event, error) {
	list, err := c.Kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: EventSelector(name).String()})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// Request names what a command asked of the API server, to explain a
// refusal: "kubectl sluice get needs list on canaries.sluice.dev in
// namespace shop".
type Request struct {
	// Command is the kubectl sluice command, such as "get".
	Command string
	// Verb and Resource are the RBAC verb and resource, such as "list" and
	// "canaries.sluice.dev".
	Verb, Resource string
	// Namespace is where; "" for every namespace.
	Namespace string
	// Name is the object's name, when the request is about one.
	Name string
}

// where names the request's scope in words.
func (r Request) where() string {
	if r.Namespace == "" {
		return "in all namespaces"
	}
	return "in namespace " + r.Namespace
}

// Explain wraps an error of the API server with what the command needed:
// a refusal names the verb and resource that the user lacks, a missing
// resource says that sluice (or its Canary) is not there.
func (r Request) Explain(err error) error {
	if err == nil {
		return nil
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return fmt.Errorf("%s %s %s: %w", r.Verb, r.Resource, r.where(), err)
	}
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("kubectl sluice %s needs %s on %s %s: %w", r.Command, r.Verb, r.Resource, r.where(), err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the API server does not know who you are (check the credentials of your kubeconfig): %w", err)
	case apierrors.IsNotFound(err) && objectMissing(status.Status()):
		if r.Resource == CanaryResource {
			return fmt.Errorf("no Canary %s/%s: sluice makes one for each Deployment annotated sluice.dev/canary: enabled: %w",
				r.Namespace, r.Name, err)
		}
		return fmt.Errorf("no %s %s/%s: %w", r.Resource, r.Namespace, r.Name, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("the API server does not serve %s: is sluice installed in this cluster? %w", r.Resource, err)
	}
	return fmt.Errorf("%s %s %s: %w", r.Verb, r.Resource, r.where(), err)
}

// objectMissing tells the NotFound of an object from that of its resource
// (the CRD is not installed), which client-go also names after the object
// asked for.
func objectMissing(s metav1.Status) bool {
	return s.Details != nil && s.Details.Name != "" && !strings.Contains(s.Message, "could not find the requested resource")
}
