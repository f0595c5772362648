// Package palette is opportunist's one colour scheme, shared by every
// picture it draws: the simulate plots (internal/sim) and the dashboard
// (internal/dashboard serves it as CSS variables). A colour means the same
// thing everywhere: paid work is blue, opportunistic work orange.
package palette

import (
	"fmt"
	"image/color"
	"strings"
)

// The colours, by what they mean.
var (
	// Paid is paid pods' requests (every pod that is not opportunistic).
	Paid = color.RGBA{R: 0x4c, G: 0x72, B: 0xb0, A: 0xff}
	// Opportunistic is the opportunistic pods' requests: the harvest.
	Opportunistic = color.RGBA{R: 0xf2, G: 0x9e, B: 0x4c, A: 0xff}
	// Allocatable is the room of the Ready nodes, drawn as a line.
	Allocatable = color.RGBA{R: 0x1d, G: 0x23, B: 0x30, A: 0xff}
	// FillLine is allocatable minus the headroom kept free for paid work,
	// drawn dashed; also the colour of warnings about paid work (waiting
	// pods, replicas that fit nowhere).
	FillLine = color.RGBA{R: 0xc4, G: 0x1e, B: 0x3a, A: 0xff}
	// Good marks a state that needs nothing (no paid pod waiting).
	Good = color.RGBA{R: 0x2e, G: 0x7d, B: 0x32, A: 0xff}
)

// Hex is a colour as CSS writes it, #rrggbb.
func Hex(c color.RGBA) string {
	return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)
}

// CSS declares every colour as a CSS custom property on :root, named for
// what it means (--paid, --opportunistic, --allocatable, --fill-line,
// --good, --bad).
func CSS() string {
	var b strings.Builder
	b.WriteString("/* Generated from internal/palette: the colours of the simulate plots too. */\n:root {\n")
	for _, v := range []struct {
		name string
		c    color.RGBA
	}{
		{"paid", Paid},
		{"opportunistic", Opportunistic},
		{"allocatable", Allocatable},
		{"fill-line", FillLine},
		{"good", Good},
		{"bad", FillLine},
	} {
		fmt.Fprintf(&b, "  --%s: %s;\n", v.name, Hex(v.c))
	}
	b.WriteString("}\n")
	return b.String()
}
