package controller

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestScalerAPI(t *testing.T) {
	store := NewDecisionStore()
	store.replace(map[string]Published{
		"batch/worker": {Current: 10, Desired: 12, Min: 1, Max: 150, Limit: "Budget", Reason: "cpu 30000m free"},
		"batch/idle":   {Current: 3, Desired: 0, Min: 0, Max: 5, Limit: "PendingPaid", Reason: "paid pods wait"},
	})
	stale := errors.New("cluster data 40s old")
	tests := []struct {
		name     string
		path     string
		ready    error
		wantCode int
		want     *ScalerDecision
		wantErr  string
	}{
		{name: "a scaler's decision", path: "/api/v1/scalers/batch/worker", wantCode: 200,
			want: &ScalerDecision{Namespace: "batch", Name: "worker", DesiredReplicas: 12, CurrentReplicas: 10, MinReplicas: 1, MaxReplicas: 150, LimitedBy: "Budget", Reason: "cpu 30000m free", Active: true}},
		{name: "desired 0 is inactive", path: "/api/v1/scalers/batch/idle", wantCode: 200,
			want: &ScalerDecision{Namespace: "batch", Name: "idle", CurrentReplicas: 3, MaxReplicas: 5, LimitedBy: "PendingPaid", Reason: "paid pods wait"}},
		{name: "unknown scaler", path: "/api/v1/scalers/batch/nope", wantCode: 404, wantErr: "no decision for OpportunisticScaler batch/nope"},
		{name: "stale data is refused", path: "/api/v1/scalers/batch/worker", ready: stale, wantCode: 503, wantErr: "cluster data 40s old"},
		{name: "no namespace", path: "/api/v1/scalers/worker", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewScalerAPI(store, func() error { return tt.ready })
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.wantCode {
				t.Fatalf("GET %s: %d, want %d: %s", tt.path, rec.Code, tt.wantCode, rec.Body)
			}
			if tt.want != nil {
				var got ScalerDecision
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				if got != *tt.want {
					t.Errorf("got %+v, want %+v", got, *tt.want)
				}
			}
			if tt.wantErr != "" && !strings.Contains(rec.Body.String(), tt.wantErr) {
				t.Errorf("body %q does not say %q", rec.Body, tt.wantErr)
			}
		})
	}
	rec := httptest.NewRecorder()
	NewScalerAPI(store, func() error { return nil }).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/scalers/batch/worker", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", rec.Code)
	}
}
