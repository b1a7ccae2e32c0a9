package sluice

import (
	"fmt"
	"strings"
)

// App is an opted-in Deployment of one container, as the tests apply it.
type App struct {
	Name, Image string
	Replicas    int
	// Annotations are lines under metadata.annotations after the opt-in,
	// such as `sluice.dev/step-weight: "20"`.
	Annotations []string
	// Container are lines of the container's fields after its image, such as
	// "ports:" and "  - containerPort: 8080".
	Container []string
}

// YAML is the Deployment's manifest. Tests edit it as text, so its layout is
// fixed: two spaces per level, the container's fields at ten.
func (a App) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: %s\n  annotations:\n    sluice.dev/canary: enabled\n", a.Name)
	for _, line := range a.Annotations {
		b.WriteString("    " + line + "\n")
	}
	fmt.Fprintf(&b, `spec:
  replicas: %d
  selector:
    matchLabels:
      app: %s
  template:
    metadata:
      labels:
        app: %s
    spec:
      containers:
        - name: app
          image: %s
`, a.Replicas, a.Name, a.Name, a.Image)
	for _, line := range a.Container {
		b.WriteString("          " + line + "\n")
	}
	return b.String()
}

// Port8080 are the container lines of an app that serves on port 8080.
var Port8080 = []string{"ports:", "  - containerPort: 8080"}
