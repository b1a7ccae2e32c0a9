package canary

import (
	"fmt"
	"strings"
)

// String tells a check's last result in one line, as people read it:
// "request-success-rate 99.20% (primary 99.50%, min 99%, 1000 requests): Passed".
func (c CheckStatus) String() string {
	var b strings.Builder
	b.WriteString(c.Name)
	if c.Value != nil {
		fmt.Fprintf(&b, " %s", c.format(*c.Value))
	} else {
		b.WriteString(" no data")
	}
	var about []string
	if c.PrimaryValue != nil {
		about = append(about, "primary "+c.format(*c.PrimaryValue))
	}
	if c.Min != nil {
		about = append(about, fmt.Sprintf("min %g%s", *c.Min, c.Unit))
	}
	if c.Max != nil {
		about = append(about, fmt.Sprintf("max %g%s", *c.Max, c.Unit))
	}
	if c.Samples != nil {
		about = append(about, fmt.Sprintf("%d requests", *c.Samples))
	}
	if len(about) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(about, ", "))
	}
	fmt.Fprintf(&b, ": %s", c.Verdict)
	return b.String()
}

// format writes a measured value in the check's unit: two decimals for
// percentages, whole milliseconds, and four significant digits for the
// rest, as the events give them.
func (c CheckStatus) format(v float64) string {
	switch c.Unit {
	case "%":
		return fmt.Sprintf("%.2f%%", v)
	case "ms":
		return fmt.Sprintf("%.0fms", v)
	default:
		return fmt.Sprintf("%.4g%s", v, c.Unit)
	}
}
