package canary

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Settings are a Deployment's canary settings: its annotations with the
// defaults applied.
type Settings struct {
	// StepWeights are the canary weights of the steps, in order.
	StepWeights []int32 `json:"stepWeights"`
	// MaxWeight is the weight at which promotion starts.
	MaxWeight int32 `json:"maxWeight"`
	// Interval is the time between analysis checks.
	Interval metav1.Duration `json:"interval"`
	// Threshold is the number of failed checks that rolls back.
	Threshold int32 `json:"threshold"`
	// MinSuccessRate is the minimum request success rate, in percent.
	MinSuccessRate float64 `json:"minSuccessRate"`
	// MaxRequestDuration is the maximum P99 request duration.
	MaxRequestDuration metav1.Duration `json:"maxRequestDuration"`
	// AnalysisWindow is the PromQL range of each check.
	AnalysisWindow metav1.Duration `json:"analysisWindow"`
	// MinRequests is the least number of canary requests a check needs to
	// judge.
	MinRequests int32 `json:"minRequests"`
	// EvidenceDeadline is how long a step may wait for enough requests.
	EvidenceDeadline metav1.Duration `json:"evidenceDeadline"`
	// BlindDeadline is how long the analysis may be blind.
	BlindDeadline metav1.Duration `json:"blindDeadline"`
	// Port is the service port; 0 means the first container port, else 80.
	Port int32 `json:"port,omitempty"`
	// Router is the routing API: istio (a VirtualService) or gateway-api
	// (an HTTPRoute). Canaries recorded before routers existed have none:
	// istio.
	// +optional
	Router string `json:"router"`
	// Gateways are the gateways of the route: Istio gateways, or Gateway
	// API Gateways; mesh stands for the traffic inside the cluster.
	Gateways []string `json:"gateways,omitempty"`
	// Hosts are extra hosts of the route.
	Hosts []string `json:"hosts,omitempty"`
	// ProgressDeadline is the time the canary may take to become ready.
	ProgressDeadline metav1.Duration `json:"progressDeadline"`
	// SkipAnalysis lets updates through as plain rolling updates.
	SkipAnalysis bool `json:"skipAnalysis,omitempty"`
	// ConfirmRollout is manual when a new revision waits for kubectl
	// sluice resume or promote before its canary starts.
	// +optional
	ConfirmRollout Gate `json:"confirmRollout,omitempty"`
	// ConfirmPromotion is manual when a canary that passed at max-weight
	// waits for kubectl sluice promote.
	// +optional
	ConfirmPromotion Gate `json:"confirmPromotion,omitempty"`
	// VirtualService names an existing VirtualService to adopt.
	VirtualService string `json:"virtualService,omitempty"`
	// HTTPRoute names an existing HTTPRoute to adopt.
	HTTPRoute string `json:"httpRoute,omitempty"`
	// Match makes the rollout an A/B test: requests that meet any of these
	// go to the canary, for Iterations analysed intervals; the others never
	// see it.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Match []RequestMatch `json:"match,omitempty"`
	// Iterations is the number of analysed intervals of an A/B test, or of
	// the mirroring before the weights.
	// +optional
	Iterations int32 `json:"iterations,omitempty"`
	// Mirror copies MirrorPercent of the requests to the canary, whose
	// answers are discarded, for Iterations analysed intervals before the
	// weights.
	// +optional
	Mirror bool `json:"mirror,omitempty"`
	// MirrorPercent is the share of the requests mirrored.
	// +optional
	MirrorPercent int32 `json:"mirrorPercent,omitempty"`
	// Session keeps a client that got the canary on it for the rest of
	// the rollout.
	// +optional
	Session *SessionSpec `json:"session,omitempty"`
	// Checks are the custom checks, and the built-in ones turned off, of
	// the Deployment's policy.
	// +listType=map
	// +listMapKey=name
	Checks []CheckSpec `json:"checks,omitempty"`
	// Prometheus is where the checks query, from the Deployment's policy;
	// the shifter's --prometheus-url when unset.
	Prometheus *PrometheusSpec `json:"prometheus,omitempty"`
	// Webhooks are the lifecycle webhooks of the Deployment's policy.
	// +kubebuilder:validation:MaxItems=20
	// +listType=map
	// +listMapKey=name
	Webhooks []WebhookSpec `json:"webhooks,omitempty"`
	// Alerts are the alerts of the Deployment's policy.
	// +kubebuilder:validation:MaxItems=10
	// +listType=map
	// +listMapKey=name
	Alerts []AlertSpec `json:"alerts,omitempty"`
}

// Gate says who opens a gate of the rollout: sluice, at once (auto, the
// default), or a person (manual).
// +kubebuilder:validation:Enum=auto;manual
type Gate string

// The gates' settings.
const (
	GateAuto   Gate = "auto"
	GateManual Gate = "manual"
)

// Defaults are the values of the settings that a Deployment's annotations
// leave out. An installation's operator sets them with the --default-* flags
// of the webhook and the shifter; the two must get the same ones, or the
// webhook would accept settings that the shifter then runs differently.
// They are configuration, not an API type: no deep-copy functions.
// +kubebuilder:object:generate=false
type Defaults struct {
	// StepWeight is the default of AnnotationStepWeight.
	StepWeight int32
	// MaxWeight is the default of AnnotationMaxWeight.
	MaxWeight int32
	// Threshold is the default of AnnotationThreshold.
	Threshold int32
	// Interval is the default of AnnotationInterval.
	Interval time.Duration
	// MaxRequestDuration is the default of AnnotationMaxRequestDuration.
	MaxRequestDuration time.Duration
	// AnalysisWindow is the default of AnnotationAnalysisWindow.
	AnalysisWindow time.Duration
	// ProgressDeadline is the default of AnnotationProgressDeadline.
	ProgressDeadline time.Duration
	// MinSuccessRate is the default of AnnotationMinSuccessRate, in percent.
	MinSuccessRate float64
	// MinRequests is the default of AnnotationMinRequests.
	MinRequests int32
	// EvidenceDeadline is the default of AnnotationEvidenceDeadline.
	EvidenceDeadline time.Duration
	// BlindDeadline is the default of AnnotationBlindDeadline; 0 stands
	// for the Deployment's progress deadline.
	BlindDeadline time.Duration
	// Router is the default of AnnotationRouter; "" stands for istio.
	Router string
}

// BuiltinDefaults are the defaults of an installation that sets none.
func BuiltinDefaults() Defaults {
	return Defaults{
		StepWeight:         10,
		MaxWeight:          50,
		Threshold:          5,
		Interval:           time.Minute,
		MaxRequestDuration: 500 * time.Millisecond,
		AnalysisWindow:     time.Minute,
		ProgressDeadline:   10 * time.Minute,
		MinSuccessRate:     99,
		MinRequests:        30,
		EvidenceDeadline:   time.Hour,
		Router:             RouterIstio,
	}
}

// Settings are the settings of a Deployment that sets none.
func (d Defaults) Settings() Settings {
	return Settings{
		StepWeights:        stepsOf(d.StepWeight, d.MaxWeight),
		MaxWeight:          d.MaxWeight,
		Interval:           duration(d.Interval),
		Threshold:          d.Threshold,
		MinSuccessRate:     d.MinSuccessRate,
		MaxRequestDuration: duration(d.MaxRequestDuration),
		AnalysisWindow:     duration(d.AnalysisWindow),
		ProgressDeadline:   duration(d.ProgressDeadline),
		MinRequests:        d.MinRequests,
		EvidenceDeadline:   duration(d.EvidenceDeadline),
		BlindDeadline:      duration(cmp.Or(d.BlindDeadline, d.ProgressDeadline)),
		Router:             cmp.Or(d.Router, RouterIstio),
	}
}

// Validate checks d by the rules of the annotations it stands in for, so
// that no installation defaults a Deployment to a value the webhook would
// refuse in an annotation. The error names each invalid value by its flag.
func (d Defaults) Validate() error {
	// The parser holds the rules: d is checked as the annotations that would
	// set the same values. They set every defaulted setting, so the defaults
	// the parser falls back on play no part.
	_, problems := BuiltinDefaults().Parse(d.annotations())
	if len(problems) == 0 {
		return nil
	}
	for i, problem := range problems {
		// Each problem starts with "<annotation>: ".
		key, rest, _ := strings.Cut(problem, ": ")
		problems[i] = "--" + flagName(key) + ": " + rest
	}
	return fmt.Errorf("invalid defaults: %s", strings.Join(problems, "; "))
}

// annotations are the annotations that set what d defaults.
func (d Defaults) annotations() map[string]string {
	a := map[string]string{
		AnnotationStepWeight:         strconv.FormatInt(int64(d.StepWeight), 10),
		AnnotationMaxWeight:          strconv.FormatInt(int64(d.MaxWeight), 10),
		AnnotationThreshold:          strconv.FormatInt(int64(d.Threshold), 10),
		AnnotationInterval:           d.Interval.String(),
		AnnotationMaxRequestDuration: d.MaxRequestDuration.String(),
		AnnotationAnalysisWindow:     d.AnalysisWindow.String(),
		AnnotationProgressDeadline:   d.ProgressDeadline.String(),
		AnnotationMinSuccessRate:     strconv.FormatFloat(d.MinSuccessRate, 'g', -1, 64),
		AnnotationMinRequests:        strconv.FormatInt(int64(d.MinRequests), 10),
		AnnotationEvidenceDeadline:   d.EvidenceDeadline.String(),
	}
	if d.Router != "" {
		a[AnnotationRouter] = d.Router
	}
	if d.BlindDeadline != 0 {
		a[AnnotationBlindDeadline] = d.BlindDeadline.String()
	}
	return a
}

// AddFlags registers a --default-<setting> flag for each field of d on fs,
// with the built-in value as the flag's default.
func (d *Defaults) AddFlags(fs *pflag.FlagSet) {
	b := BuiltinDefaults()
	fs.Int32Var(&d.StepWeight, flagName(AnnotationStepWeight), b.StepWeight, flagUsage(AnnotationStepWeight))
	fs.Int32Var(&d.MaxWeight, flagName(AnnotationMaxWeight), b.MaxWeight, flagUsage(AnnotationMaxWeight))
	fs.DurationVar(&d.Interval, flagName(AnnotationInterval), b.Interval, flagUsage(AnnotationInterval))
	fs.Int32Var(&d.Threshold, flagName(AnnotationThreshold), b.Threshold, flagUsage(AnnotationThreshold))
	fs.Float64Var(&d.MinSuccessRate, flagName(AnnotationMinSuccessRate), b.MinSuccessRate, flagUsage(AnnotationMinSuccessRate))
	fs.DurationVar(&d.MaxRequestDuration, flagName(AnnotationMaxRequestDuration), b.MaxRequestDuration, flagUsage(AnnotationMaxRequestDuration))
	fs.DurationVar(&d.AnalysisWindow, flagName(AnnotationAnalysisWindow), b.AnalysisWindow, flagUsage(AnnotationAnalysisWindow))
	fs.DurationVar(&d.ProgressDeadline, flagName(AnnotationProgressDeadline), b.ProgressDeadline, flagUsage(AnnotationProgressDeadline))
	fs.Int32Var(&d.MinRequests, flagName(AnnotationMinRequests), b.MinRequests, flagUsage(AnnotationMinRequests))
	fs.DurationVar(&d.EvidenceDeadline, flagName(AnnotationEvidenceDeadline), b.EvidenceDeadline, flagUsage(AnnotationEvidenceDeadline))
	fs.DurationVar(&d.BlindDeadline, flagName(AnnotationBlindDeadline), b.BlindDeadline,
		flagUsage(AnnotationBlindDeadline)+" (0: the progress deadline)")
	fs.StringVar(&d.Router, flagName(AnnotationRouter), b.Router, flagUsage(AnnotationRouter)+": "+strings.Join(routers, " or "))
}

// flagName is the name of the flag that sets the default of an annotation:
// default-step-weight for sluice.dev/step-weight.
func flagName(annotation string) string {
	return "default-" + strings.TrimPrefix(annotation, Prefix)
}

func flagUsage(annotation string) string {
	return fmt.Sprintf("default of the %s annotation", annotation)
}

func duration(d time.Duration) metav1.Duration { return metav1.Duration{Duration: d} }

// stepsOf returns step, 2*step, ... up to the first weight at or above max
// (capped at 100): the steps of a constant step weight.
func stepsOf(step, maxWeight int32) []int32 {
	var weights []int32
	for w := step; ; w += step {
		weights = append(weights, min(w, 100))
		if w >= maxWeight || w >= 100 {
			return weights
		}
	}
}

// Parse reads the settings from a Deployment's annotations, with d for the
// ones they leave out; d must be valid (see Validate). It returns one message
// per problem, naming the annotation, its value and what is allowed; the
// settings are valid only if there are none.
func (d Defaults) Parse(annotations map[string]string) (Settings, []string) {
	s := d.Settings()
	p := parser{annotations: annotations}
	step := p.integer(AnnotationStepWeight, d.StepWeight, 1, 100)
	known := len(p.problems)
	s.MaxWeight = p.integer(AnnotationMaxWeight, s.MaxWeight, 1, 100)
	maxWeightValid := len(p.problems) == known
	s.StepWeights = stepsOf(step, s.MaxWeight)
	if raw, ok := annotations[AnnotationStepWeights]; ok {
		weights, valid := parseWeights(raw)
		switch {
		case !valid:
			p.fail(AnnotationStepWeights, raw, "is not a comma-separated list of strictly increasing integers between 1 and 100")
		case !maxWeightValid:
			// Comparing with a max-weight the user did not set would confuse.
		case weights[len(weights)-1] < s.MaxWeight:
			p.fail(AnnotationStepWeights, raw, fmt.Sprintf("never reaches %s %d; end the list at or above it", AnnotationMaxWeight, s.MaxWeight))
		default:
			s.StepWeights = weights
		}
	}
	s.Interval = p.duration(AnnotationInterval, s.Interval, time.Second)
	s.Threshold = p.integer(AnnotationThreshold, s.Threshold, 1, 1000)
	s.MinSuccessRate = p.percentage(AnnotationMinSuccessRate, s.MinSuccessRate)
	s.MaxRequestDuration = p.duration(AnnotationMaxRequestDuration, s.MaxRequestDuration, time.Millisecond)
	s.AnalysisWindow = p.duration(AnnotationAnalysisWindow, s.AnalysisWindow, time.Second)
	s.Port = p.integer(AnnotationPort, 0, 1, 65535)
	s.Router = p.oneOf(AnnotationRouter, s.Router, routers)
	s.Gateways = p.list(AnnotationGateways, "gateway names, such as istio-system/public or mesh", validGateway)
	s.Hosts = p.list(AnnotationHosts, "host names, such as app.example.com or *.example.com", validHost)
	s.ProgressDeadline = p.duration(AnnotationProgressDeadline, s.ProgressDeadline, time.Second)
	s.MinRequests = p.integer(AnnotationMinRequests, s.MinRequests, 1, 1_000_000)
	s.EvidenceDeadline = p.duration(AnnotationEvidenceDeadline, s.EvidenceDeadline, time.Second)
	if d.BlindDeadline == 0 {
		// The progress deadline of this Deployment, not the installation's.
		s.BlindDeadline = s.ProgressDeadline
	}
	s.BlindDeadline = p.duration(AnnotationBlindDeadline, s.BlindDeadline, time.Second)
	s.SkipAnalysis = p.boolean(AnnotationSkipAnalysis)
	s.ConfirmRollout = p.gate(AnnotationConfirmRollout)
	s.ConfirmPromotion = p.gate(AnnotationConfirmPromotion)
	s.VirtualService = p.adopt(AnnotationVirtualService, "a VirtualService", s.Router, RouterIstio)
	s.HTTPRoute = p.adopt(AnnotationHTTPRoute, "an HTTPRoute", s.Router, RouterGatewayAPI)
	p.styles(&s)
	if raw, ok := annotations[AnnotationPolicy]; ok && !validPolicyName(strings.TrimPrefix(raw, ClusterPolicyPrefix)) {
		p.fail(AnnotationPolicy, raw, "is not the name of a CanaryPolicy, or cluster/ and the name of a ClusterCanaryPolicy (a DNS-1123 subdomain)")
	}
	if raw, ok := annotations[AnnotationEnabled]; ok && raw != EnabledValue && raw != DisabledValue {
		p.fail(AnnotationEnabled, raw, fmt.Sprintf("is not %q or %q", EnabledValue, DisabledValue))
	}
	for key := range annotations {
		if strings.HasPrefix(key, Prefix) && !slices.Contains(knownAnnotations, key) {
			p.problems = append(p.problems, fmt.Sprintf("%s is not a sluice annotation; the known ones are %s",
				key, strings.Join(knownAnnotations, ", ")))
		}
	}
	slices.Sort(p.problems)
	return s, p.problems
}

// KnownAnnotations returns every sluice annotation, in the order the README
// lists them.
func KnownAnnotations() []string { return slices.Clone(knownAnnotations) }

var knownAnnotations = []string{
	AnnotationEnabled, AnnotationStepWeight, AnnotationStepWeights, AnnotationMaxWeight,
	AnnotationInterval, AnnotationThreshold, AnnotationMinSuccessRate, AnnotationMaxRequestDuration,
	AnnotationAnalysisWindow, AnnotationMinRequests, AnnotationEvidenceDeadline, AnnotationBlindDeadline, AnnotationPort, AnnotationGateways, AnnotationHosts,
	AnnotationProgressDeadline, AnnotationSkipAnalysis, AnnotationConfirmRollout, AnnotationConfirmPromotion,
	AnnotationRouter, AnnotationVirtualService, AnnotationHTTPRoute,
	AnnotationMatchHeaders, AnnotationMatchCookie, AnnotationIterations, AnnotationMirror, AnnotationMirrorPercent, AnnotationSessionCookie,
	AnnotationPolicy, AnnotationCanaryTemplate, AnnotationCanaryRevision,
}

// routers are the values of AnnotationRouter.
var routers = []string{RouterIstio, RouterGatewayAPI}

// parser collects the problems of one set of annotations.
type parser struct {
	annotations map[string]string
	problems    []string
}

func (p *parser) fail(key, value, allowed string) {
	p.problems = append(p.problems, fmt.Sprintf("%s: %q %s", key, value, allowed))
}

func (p *parser) integer(key string, def, lo, hi int32) int32 {
	raw, ok := p.annotations[key]
	if !ok {
		return def
	}
	v, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 32)
	if err != nil || v < int64(lo) || v > int64(hi) {
		p.fail(key, raw, fmt.Sprintf("is not an integer between %d and %d", lo, hi))
		return def
	}
	return int32(v)
}

func (p *parser) percentage(key string, def float64) float64 {
	raw, ok := p.annotations[key]
	if !ok {
		return def
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || !(v >= 0 && v <= 100) {
		p.fail(key, raw, "is not a number between 0 and 100")
		return def
	}
	return v
}

func (p *parser) duration(key string, def metav1.Duration, least time.Duration) metav1.Duration {
	raw, ok := p.annotations[key]
	if !ok {
		return def
	}
	v, err := time.ParseDuration(strings.TrimSpace(raw))
	if err != nil || v < least {
		p.fail(key, raw, fmt.Sprintf("is not a Go duration of at least %s, such as 30s or 2m", least))
		return def
	}
	return duration(v)
}

func (p *parser) oneOf(key, def string, allowed []string) string {
	raw, ok := p.annotations[key]
	if !ok {
		return def
	}
	if !slices.Contains(allowed, raw) {
		p.fail(key, raw, "is not one of "+strings.Join(allowed, ", "))
		return def
	}
	return raw
}

// adopt reads the name of a route to adopt, a route of the kind that only
// router by uses.
func (p *parser) adopt(key, route, router, by string) string {
	raw, ok := p.annotations[key]
	switch {
	case !ok:
		return ""
	case len(validation.IsDNS1123Subdomain(raw)) > 0:
		p.fail(key, raw, fmt.Sprintf("is not the name of %s (a DNS-1123 subdomain)", route))
	case router != by:
		p.fail(key, raw, fmt.Sprintf("names %s, which router %s does not use; set %s: %s, or remove it", route, router, AnnotationRouter, by))
	default:
		return raw
	}
	return ""
}

func (p *parser) boolean(key string) bool {
	raw, ok := p.annotations[key]
	if !ok {
		return false
	}
	if raw != "true" && raw != "false" {
		p.fail(key, raw, `is not "true" or "false"`)
		return false
	}
	return raw == "true"
}

// gate reads a gate; GateAuto, the default, is left out of the settings
// so that they read as before gates existed.
func (p *parser) gate(key string) Gate {
	raw, ok := p.annotations[key]
	if !ok || raw == string(GateAuto) {
		return ""
	}
	if raw != string(GateManual) {
		p.fail(key, raw, fmt.Sprintf("is not %q or %q", GateAuto, GateManual))
		return ""
	}
	return GateManual
}

func (p *parser) list(key, what string, valid func(string) bool) []string {
	raw, ok := p.annotations[key]
	if !ok {
		return nil
	}
	items := strings.Split(raw, ",")
	for i, item := range items {
		items[i] = strings.TrimSpace(item)
		if !valid(items[i]) {
			p.fail(key, raw, "is not a comma-separated list of "+what)
			return nil
		}
	}
	return items
}

// parseWeights parses "5,10,25,50": strictly increasing integers in 1..100.
func parseWeights(raw string) ([]int32, bool) {
	var weights []int32
	for item := range strings.SplitSeq(raw, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(item), 10, 32)
		if err != nil || v < 1 || v > 100 || (len(weights) > 0 && int32(v) <= weights[len(weights)-1]) {
			return nil, false
		}
		weights = append(weights, int32(v))
	}
	return weights, len(weights) > 0
}

func validPolicyName(name string) bool { return len(validation.IsDNS1123Subdomain(name)) == 0 }

// validGateway accepts mesh, name, namespace/name and a gateway's FQDN.
func validGateway(g string) bool {
	ns, name, found := strings.Cut(g, "/")
	if !found {
		name = ns
	} else if len(validation.IsDNS1123Label(ns)) > 0 {
		return false
	}
	return len(validation.IsDNS1123Subdomain(name)) == 0
}

func validHost(h string) bool {
	if h == "*" {
		return true
	}
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		h = rest
	}
	return len(validation.IsDNS1123Subdomain(h)) == 0
}
