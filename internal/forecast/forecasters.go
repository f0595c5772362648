package forecast

import (
	"gonum.org/v1/gonum/dsp/fourier"
)

// Method names a forecaster.
type Method string

const (
	// SeasonalNaive: the same time one period ago (yesterday, or last week).
	SeasonalNaive Method = "seasonal-naive"
	// LowPassFFT: the history folded onto one period (the mean of each
	// slot over the whole periods held), without the harmonics faster than
	// lowPassWavelength (gonum's dsp/fourier), repeated.
	LowPassFFT Method = "low-pass-fft"
	// HoltWinters: additive Holt-Winters with a damped trend.
	HoltWinters Method = "holt-winters"
	// None: no forecast; the budget reacts to the demand it sees (the
	// backtest scores it as the last value held).
	None Method = "none"
)

// Methods lists the forecasters in the order they are tried (ties go to
// the first).
func Methods() []Method { return []Method{SeasonalNaive, LowPassFFT, HoltWinters, None} }

// forecaster returns the next h values after past (gap-free), for a
// period of p samples (p ≤ len(past)/2).
type forecaster func(past []float64, p, h int) []float64

func forecasterOf(m Method) forecaster {
	switch m {
	case SeasonalNaive:
		return seasonalNaive
	case LowPassFFT:
		return lowPassFFT
	case HoltWinters:
		return holtWinters
	}
	return lastValue
}

func seasonalNaive(past []float64, p, h int) []float64 {
	n := len(past)
	out := make([]float64, h)
	for i := range out {
		back := p * ((i / p) + 1) // the last period that has the slot
		out[i] = past[n+i-back]
	}
	return out
}

// lowPassWavelength (in samples, at 1 min: half an hour) is the fastest
// harmonic LowPassFFT keeps: slower ones carry the daily shape, faster
// ones mostly the noise of the slots.
const lowPassWavelength = 30

func lowPassFFT(past []float64, p, h int) []float64 {
	n := len(past)
	k := n / p
	profile := make([]float64, p)
	from := n - k*p
	for i := from; i < n; i++ {
		profile[(i-from)%p] += past[i]
	}
	for j := range profile {
		profile[j] /= float64(k)
	}
	fft := fourier.NewFFT(p)
	coeff := fft.Coefficients(nil, profile)
	cutoff := max(p/lowPassWavelength, 1)
	for j := cutoff + 1; j < len(coeff); j++ {
		coeff[j] = 0
	}
	smooth := fft.Sequence(nil, coeff)
	out := make([]float64, h)
	for i := range out {
		out[i] = smooth[i%p] / float64(p) // gonum's inverse is not normalised
	}
	return out
}

// Holt-Winters smoothing, per sample at a 1-minute step: the level follows
// within tens of minutes, the trend barely moves and is damped, each slot
// of the season learns a fifth of its error each period.
const (
	hwAlpha = 0.05
	hwBeta  = 0.001
	hwGamma = 0.2
	hwPhi   = 0.98
)

func holtWinters(past []float64, p, h int) []float64 {
	n := len(past)
	mean := func(xs []float64) float64 {
		s := 0.0
		for _, v := range xs {
			s += v
		}
		return s / float64(len(xs))
	}
	level := mean(past[:p])
	trend := (mean(past[p:2*p]) - level) / float64(p)
	season := make([]float64, p) // season[t%p] is the slot of t
	for j := range season {
		season[j] = past[j] - level
	}
	for t := p; t < n; t++ {
		prev := level
		s := season[t%p]
		level = hwAlpha*(past[t]-s) + (1-hwAlpha)*(prev+hwPhi*trend)
		trend = hwBeta*(level-prev) + (1-hwBeta)*hwPhi*trend
		season[t%p] = hwGamma*(past[t]-level) + (1-hwGamma)*s
	}
	out := make([]float64, h)
	damp, sum := 1.0, 0.0
	for i := range out {
		damp *= hwPhi
		sum += damp
		out[i] = level + sum*trend + season[(n+i)%p]
	}
	return out
}

func lastValue(past []float64, _, h int) []float64 {
	out := make([]float64, h)
	for i := range out {
		out[i] = past[len(past)-1]
	}
	return out
}
