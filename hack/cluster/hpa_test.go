package main

import (
	"strings"
	"testing"
)

func TestHPAFlags(t *testing.T) {
	s := settings{HPASyncPeriod: "2s"}
	for _, tt := range []struct {
		args []string
		want string // hpaArgs, or the error's start
	}{
		{[]string{"--sync-period", "10s", "--downscale-stabilization", "30s"}, "--horizontal-pod-autoscaler-sync-period=10s --horizontal-pod-autoscaler-downscale-stabilization=30s"},
		{[]string{"--downscale-stabilization=0s"}, "--horizontal-pod-autoscaler-sync-period=2s --horizontal-pod-autoscaler-downscale-stabilization=0s"},
		{[]string{"--sync-period=15s"}, "--horizontal-pod-autoscaler-sync-period=15s"},
		{[]string{"--reset"}, "--horizontal-pod-autoscaler-sync-period=2s"},
		{nil, "error: nothing to set"},
		{[]string{"--reset", "--sync-period=10s"}, "error: --reset restores the defaults and takes no other flag"},
		{[]string{"--sync-period=-1s"}, "error: --sync-period -1s is not positive"},
		{[]string{"--sync-period=soon"}, `error: invalid value "soon" for flag -sync-period`},
		{[]string{"10s"}, `error: unexpected arguments "10s"`},
	} {
		f, err := parseHPAFlags(tt.args)
		got := strings.Join(hpaArgs(s, f), " ")
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("hpa %q: %s, want %s", tt.args, got, tt.want)
		}
	}
}
