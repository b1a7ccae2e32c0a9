package mutate

import (
	"bytes"
	"encoding/json"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/pkg/routing/routers"
)

const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// deployment is what the webhook reads of a Deployment. It picks the few
// fields it needs out of the raw JSON instead of decoding the whole object:
// the admission path then costs little more than the API server's own
// decoding of the review.
type deployment struct {
	// template is spec.template exactly as the API server serialised it. Both
	// objects of a review come from the same serialiser after defaulting, so
	// equal bytes mean an equal template and different bytes a changed one.
	template string
	// annotations holds the sluice.dev/ annotations only.
	annotations map[string]string
	// allAnnotations is metadata.annotations, for its total size.
	allAnnotations gjson.Result
	// lastApplied is kubectl's last-applied-configuration, still JSON-quoted.
	lastApplied string
	pending     pending
}

// pending is the canary a Deployment carries in its internal annotations.
type pending struct {
	template    string
	revision    string
	hasTemplate bool
	hasRevision bool
}

// view is raw as a string, without copying it: raw is part of the request's
// body, which nothing changes while the webhook decides, and no string read
// from it outlives the decision (the patch and the warnings are copies).
func view(raw []byte) string {
	return unsafe.String(unsafe.SliceData(raw), len(raw))
}

// parse reads a Deployment's JSON. The strings it keeps point into raw.
func parse(raw []byte) deployment {
	doc := view(raw)
	d := deployment{template: gjson.Get(doc, "spec.template").Raw}
	d.allAnnotations = gjson.Get(doc, "metadata.annotations")
	d.allAnnotations.ForEach(func(k, v gjson.Result) bool {
		switch key := k.Str; {
		case key == canary.AnnotationCanaryTemplate:
			d.pending.template, d.pending.hasTemplate = v.Str, true
		case key == canary.AnnotationCanaryRevision:
			d.pending.revision, d.pending.hasRevision = v.Str, true
		case key == lastAppliedAnnotation:
			d.lastApplied = v.Raw
		case strings.HasPrefix(key, canary.Prefix):
			if d.annotations == nil {
				d.annotations = map[string]string{}
			}
			d.annotations[key] = v.Str
		}
		return true
	})
	return d
}

// valid reports whether spec.template is a JSON object.
func (d deployment) valid() bool {
	return strings.HasPrefix(d.template, "{")
}

// problems lists what is wrong with the sluice settings, with the policy
// they run by, or with the reference to one that does not exist.
func (d deployment) problems(defaults canary.Defaults, policy *canary.PolicySnapshot, policyProblem string) []string {
	if len(d.annotations) == 0 {
		return nil
	}
	_, _, problems := routers.ParseWithPolicy(defaults, policy, d.annotations)
	if policyProblem != "" {
		problems = append(problems, policyProblem)
	}
	return problems
}

// annotationBytes is the size the API server counts against its limit.
func (d deployment) annotationBytes() int {
	n := 0
	d.allAnnotations.ForEach(func(k, v gjson.Result) bool {
		n += len(k.Str) + len(v.Str)
		return true
	})
	return n
}

// removePending is a patch that removes the internal annotations present.
func (d deployment) removePending() []byte {
	var p patch
	if d.pending.hasTemplate {
		p.remove(annotationPath(canary.AnnotationCanaryTemplate))
	}
	if d.pending.hasRevision {
		p.remove(annotationPath(canary.AnnotationCanaryRevision))
	}
	return p.bytes()
}

func (p pending) set() bool { return p.hasTemplate || p.hasRevision }

func (p pending) equal(o pending) bool {
	return p.hasTemplate == o.hasTemplate && p.hasRevision == o.hasRevision &&
		p.revision == o.revision && p.template == o.template
}

// consistent reports whether the pair is what the webhook itself writes.
func (p pending) consistent() bool {
	return p.hasTemplate && p.hasRevision && gjson.Valid(p.template) &&
		gjson.Parse(p.template).IsObject() && p.revision == canary.Revision([]byte(p.template))
}

// bytes is the pair's share of the annotations' size.
func (p pending) bytes() int {
	n := 0
	if p.hasTemplate {
		n += len(canary.AnnotationCanaryTemplate) + len(p.template)
	}
	if p.hasRevision {
		n += len(canary.AnnotationCanaryRevision) + len(p.revision)
	}
	return n
}

// appliedManifest is the manifest in kubectl's last-applied-configuration.
type appliedManifest string

// parseApplied unquotes the annotation's JSON string value.
func parseApplied(quoted string) appliedManifest {
	return appliedManifest(gjson.Parse(quoted).Str)
}

// template returns the manifest's pod template as JSON, or "" for none.
func (m appliedManifest) template() string {
	return gjson.Get(string(m), "spec.template").Raw
}

// copiesLiveObject reports whether the manifest is a copy of a stored
// Deployment (what `kubectl get` printed) rather than one the user wrote: it
// carries the uid, which only the API server sets, or sluice's own
// annotations.
func (m appliedManifest) copiesLiveObject() bool {
	metadata := gjson.Get(string(m), "metadata")
	if metadata.Get("uid").Exists() {
		return true
	}
	found := false
	metadata.Get("annotations").ForEach(func(k, _ gjson.Result) bool {
		found = k.Str == canary.AnnotationCanaryTemplate || k.Str == canary.AnnotationCanaryRevision
		return !found
	})
	return found
}

// patch builds a JSON patch by hand, so that a large template is copied into
// it once rather than decoded and encoded again.
type patch struct{ buf bytes.Buffer }

func (p *patch) op(op, path string) {
	if p.buf.Len() == 0 {
		p.buf.WriteByte('[')
	} else {
		p.buf.WriteByte(',')
	}
	p.buf.WriteString(`{"op":"`)
	p.buf.WriteString(op)
	p.buf.WriteString(`","path":`)
	writeJSONString(&p.buf, path)
}

func (p *patch) replaceRaw(path, raw string) {
	p.op("replace", path)
	p.buf.WriteString(`,"value":`)
	p.buf.WriteString(raw)
	p.buf.WriteByte('}')
}

func (p *patch) addString(path, value string) {
	p.op("add", path)
	p.buf.WriteString(`,"value":`)
	writeJSONString(&p.buf, value)
	p.buf.WriteByte('}')
}

func (p *patch) remove(path string) {
	p.op("remove", path)
	p.buf.WriteByte('}')
}

func (p *patch) bytes() []byte {
	if p.buf.Len() == 0 {
		return nil
	}
	p.buf.WriteByte(']')
	return p.buf.Bytes()
}

func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	buf.Truncate(buf.Len() - 1) // Encode ends with a newline
}

// annotationPath is the JSON pointer of an annotation (RFC 6901 escaping).
func annotationPath(key string) string {
	return "/metadata/annotations/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}
