package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// plotLine is one line of a panel; a NaN y leaves a gap.
type plotLine struct {
	label, color string
	dash         bool
	xs, ys       []float64
}

// plotPanel is one chart: lines over a shared x axis from 0 to xmax.
type plotPanel struct {
	title, xlabel, ylabel string
	logY                  bool
	xmax                  float64
	lines                 []plotLine
	// shade marks the x range [shade[0], shade[1]] with shadeLabel; a
	// zero range marks nothing.
	shade      [2]float64
	shadeLabel string
}

const (
	svgWidth    = 960
	panelHeight = 330
	headHeight  = 56
	padLeft     = 78
	padRight    = 24
	padTop      = 34
	padBottom   = 48
)

// writeSVG draws the panels one under the other, each a nested <svg>,
// under a title and a note.
func writeSVG(w io.Writer, title, note string, panels []plotPanel) error {
	var b bytes.Buffer
	h := headHeight + panelHeight*len(panels)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", svgWidth, h, svgWidth, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", padLeft, esc(title))
	fmt.Fprintf(&b, `<text x="%d" y="44" fill="#555555">%s</text>`+"\n", padLeft, esc(note))
	for i, p := range panels {
		p.draw(&b, headHeight+i*panelHeight)
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// writeSVGFile writes the panels to an SVG file at path (see writeSVG).
func writeSVGFile(path, title, note string, panels []plotPanel) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = writeSVG(f, title, note, panels)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (p plotPanel) draw(b *bytes.Buffer, y0 int) {
	fmt.Fprintf(b, `<svg x="0" y="%d" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", y0, svgWidth, panelHeight, svgWidth, panelHeight)
	fmt.Fprintf(b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", padLeft, esc(p.title))
	left, right := float64(padLeft), float64(svgWidth-padRight)
	top, bottom := float64(padTop), float64(panelHeight-padBottom)
	xmax := p.xmax
	if xmax <= 0 {
		xmax = 1
	}
	px := func(x float64) float64 { return left + (right-left)*x/xmax }

	// The y range: from 0 (linear) or the decade below the smallest
	// positive value (log), to a little above the largest.
	ymin, ymax := math.Inf(1), 0.0
	for _, l := range p.lines {
		for _, y := range l.ys {
			if math.IsNaN(y) {
				continue
			}
			ymax = max(ymax, y)
			if y > 0 {
				ymin = min(ymin, y)
			}
		}
	}
	var py func(float64) float64
	var yticks []float64
	var ylab func(float64) string
	if p.logY {
		lo := math.Pow(10, math.Floor(math.Log10(min(max(ymin, 1), ymax))))
		if math.IsInf(ymin, 1) || ymax <= 0 {
			lo, ymax = 1, 10
		}
		hi := math.Pow(10, math.Ceil(math.Log10(ymax*1.05)))
		lg := func(v float64) float64 { return math.Log10(max(v, lo)) }
		py = func(v float64) float64 { return bottom - (bottom-top)*(lg(v)-lg(lo))/(lg(hi)-lg(lo)) }
		for v := lo; v <= hi*1.001; v *= 10 {
			yticks = append(yticks, v)
		}
		ylab = siLabel
	} else {
		hi := ymax * 1.1
		if hi <= 0 {
			hi = 1
		}
		yticks = niceTicks(hi, 6)
		hi = max(hi, yticks[len(yticks)-1])
		py = func(v float64) float64 { return bottom - (bottom-top)*v/hi }
		ylab = func(v float64) string { return trimFloat(v) }
	}

	if p.shade[1] > p.shade[0] {
		x1, x2 := px(p.shade[0]), px(min(p.shade[1], xmax))
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#fdf1dc"/>`+"\n", x1, top, max(x2-x1, 1), bottom-top)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="#a0661c" font-size="11">%s</text>`+"\n", x1+4, top+14, esc(p.shadeLabel))
	}
	// Grid, ticks and their labels.
	for _, v := range yticks {
		y := py(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e3e3e3"/>`+"\n", left, y, right, y)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333333"/>`+"\n", left-5, y, left, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-8, y+4, esc(ylab(v)))
	}
	for _, v := range niceTicks(xmax, 10) {
		if v > xmax*1.0001 {
			break
		}
		x := px(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#f0f0f0"/>`+"\n", x, top, x, bottom)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333333"/>`+"\n", x, bottom, x, bottom+5)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, bottom+18, trimFloat(v))
	}
	// Axes and their labels.
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333333"/>`+"\n", left, top, left, bottom)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333333"/>`+"\n", left, bottom, right, bottom)
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", (left+right)/2, bottom+38, esc(p.xlabel))
	fmt.Fprintf(b, `<text x="16" y="%.1f" text-anchor="middle" transform="rotate(-90 16 %.1f)">%s</text>`+"\n", (top+bottom)/2, (top+bottom)/2, esc(p.ylabel))

	// The lines, one polyline per stretch without gaps.
	for _, l := range p.lines {
		dash := ""
		if l.dash {
			dash = ` stroke-dasharray="6 4"`
		}
		var pts []string
		flush := func() {
			if len(pts) > 0 {
				fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.6"%s points="%s"/>`+"\n", l.color, dash, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for i, x := range l.xs {
			if math.IsNaN(l.ys[i]) {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x), py(l.ys[i])))
		}
		flush()
	}
	// The legend, top right inside the plot.
	lx, ly := right-200, top+10
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="192" height="%d" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>`+"\n", lx-8, ly-8, 18*len(p.lines)+6)
	for i, l := range p.lines {
		y := ly + float64(18*i) + 4
		dash := ""
		if l.dash {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, y, lx+24, y, l.color, dash)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+30, y+4, esc(l.label))
	}
	b.WriteString("</svg>\n")
}

// niceTicks returns ticks from 0 by a step of 1, 2 or 5 times a power of
// ten, about n of them up to hi and one past it.
func niceTicks(hi float64, n int) []float64 {
	if !(hi > 0) || math.IsInf(hi, 1) {
		hi = 1
	}
	raw := hi / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for v := 0.0; ; v += step {
		ticks = append(ticks, v)
		if v >= hi {
			return ticks
		}
	}
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

// siLabel writes 1000 as 1k, 10000 as 10k.
func siLabel(v float64) string {
	switch {
	case v >= 1e6:
		return trimFloat(v/1e6) + "M"
	case v >= 1e3:
		return trimFloat(v/1e3) + "k"
	}
	return trimFloat(v)
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
