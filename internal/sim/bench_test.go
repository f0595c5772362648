package sim

import (
	"testing"
	"time"
)

// BenchmarkSimulateDiurnalWeek simulates a week of the diurnal scenario on
// the write-up's cluster at a one-second step (604,800 steps): every
// strategy in parallel as `opportunist simulate` runs them, and each alone.
func BenchmarkSimulateDiurnalWeek(b *testing.B) {
	sc, err := Builtin("diurnal")
	if err != nil {
		b.Fatal(err)
	}
	sc.Duration = 7 * 24 * time.Hour
	b.Run("strategies=all", func(b *testing.B) {
		for b.Loop() {
			if _, err := Run(sc, Options{Seed: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
	load := loadEvents(sc, 1)
	for _, name := range Strategies() {
		b.Run("strategy="+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if out := simulate(sc, name, load, false); out.err != nil {
					b.Fatal(out.err)
				}
			}
		})
	}
}
