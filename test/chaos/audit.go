package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"sluice.dev/sluice/pkg/canary"
	"sluice.dev/sluice/test/sluice"
)

// auditPolicy has the API server log every write of a Canary's status by the
// shifter with the status it stored: a complete history, where a watch that
// lists again after an API server restart skips versions.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: RequestResponse
    users: ["` + sluice.ShifterUser + `"]
    verbs: [update]
    resources: [{group: sluice.dev, resources: [canaries/status]}]
  - level: None
`

// auditEvent is what the suite reads of one line of the audit log.
type auditEvent struct {
	ObjectRef *struct {
		Namespace string `json:"namespace"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	// ResponseObject is the Canary stored, or a Status on failure.
	ResponseObject json.RawMessage `json:"responseObject"`
	StageTimestamp time.Time       `json:"stageTimestamp"`
}

// readAudit adds the Canary statuses that the audit log holds past what
// was read of it before.
func (l *ledger) readAudit(path string) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(l.auditOffset, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReader(f)
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			// A line not finished yet is read again next time.
			return nil
		}
		if err != nil {
			return err
		}
		l.auditOffset += int64(len(line))
		var e auditEvent
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("audit log %s: %w", path, err)
		}
		if e.ObjectRef == nil || e.ObjectRef.Namespace != namespace || e.ResponseStatus == nil || e.ResponseStatus.Code != 200 {
			continue
		}
		cr := &canary.Canary{}
		if err := json.Unmarshal(e.ResponseObject, cr); err != nil {
			return fmt.Errorf("audit log %s: %w", path, err)
		}
		if a, ok := l.apps[cr.Name]; ok {
			a.audited = append(a.audited, statusSeen{rv: parseRV(cr.ResourceVersion), at: e.StageTimestamp, st: cr.Status})
		}
	}
}

// history is every status of a's Canary that the watch delivered or the
// audit log holds, in the order etcd stored them.
func (a *app) history() []statusSeen {
	all := append(slices.Clone(a.statuses), a.audited...)
	slices.SortStableFunc(all, func(x, y statusSeen) int { return cmp.Compare(x.rv, y.rv) })
	return slices.CompactFunc(all, func(x, y statusSeen) bool { return x.rv == y.rv && x.deleted == y.deleted })
}
