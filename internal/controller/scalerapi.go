package controller

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// ScalerDecision is what GET /api/v1/scalers/{namespace}/{name} returns: one
// scaler's last decision, for KEDA's metrics-api scaler (valueLocation
// desiredReplicas, targetValue 1) or any script. Counts are replicas.
type ScalerDecision struct {
	Namespace       string `json:"namespace"`
	Name            string `json:"name"`
	DesiredReplicas int32  `json:"desiredReplicas"`
	CurrentReplicas int32  `json:"currentReplicas"`
	MinReplicas     int32  `json:"minReplicas"`
	MaxReplicas     int32  `json:"maxReplicas"`
	// LimitedBy names what bounds DesiredReplicas (Budget, Fit, PendingPaid, …).
	LimitedBy string `json:"limitedBy"`
	Reason    string `json:"reason"`
	// Active is false when nothing fits (desired 0): KEDA's activation.
	Active bool `json:"active"`
}

// apiError is the body of every non-200 answer: one line saying what to do.
type apiError struct {
	Error string `json:"error"`
}

// NewScalerAPI serves GET /api/v1/scalers/{namespace}/{name} from the
// decisions the reconciler (or, on a standby, the leader's status)
// published. ready reports whether the capacity data is fresh: a stale
// answer is refused (503), so a reader keeps its last good value instead of
// acting on old numbers, as the metrics APIs do.
func NewScalerAPI(decisions *DecisionStore, ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/scalers/{namespace}/{name}", func(w http.ResponseWriter, r *http.Request) {
		ns, name := r.PathValue("namespace"), r.PathValue("name")
		if err := ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, apiError{fmt.Sprintf("capacity data is not fresh (%v); retry when /readyz answers ok", err)})
			return
		}
		p, ok := decisions.Get(ns + "/" + name)
		if !ok {
			writeJSON(w, http.StatusNotFound, apiError{fmt.Sprintf("no decision for OpportunisticScaler %s/%s: create it (kubectl get opportunisticscalers -n %s), and run opportunist with the controller on and the CRD installed", ns, name, ns)})
			return
		}
		writeJSON(w, http.StatusOK, ScalerDecision{
			Namespace: ns, Name: name,
			DesiredReplicas: p.Desired, CurrentReplicas: p.Current, MinReplicas: p.Min, MaxReplicas: p.Max,
			LimitedBy: p.Limit, Reason: p.Reason, Active: p.Desired > 0,
		})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
