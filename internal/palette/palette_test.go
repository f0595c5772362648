package palette

import (
	"image/color"
	"strings"
	"testing"
)

func TestHex(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    color.RGBA
		want string
	}{
		{"paid is blue", Paid, "#4c72b0"},
		{"opportunistic is orange", Opportunistic, "#f29e4c"},
		{"leading zeros kept", color.RGBA{R: 1, G: 2, B: 3, A: 0xff}, "#010203"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Hex(tc.c); got != tc.want {
				t.Errorf("Hex = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCSSDeclaresEveryColour(t *testing.T) {
	css := CSS()
	for _, want := range []string{"--paid: #4c72b0;", "--opportunistic: #f29e4c;", "--allocatable: #1d2330;", "--fill-line: #c41e3a;", "--good: #2e7d32;", "--bad: #c41e3a;"} {
		if !strings.Contains(css, want) {
			t.Errorf("CSS lacks %q:\n%s", want, css)
		}
	}
}
