package main

import (
	"fmt"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

const membersAxis = "member clusters"

// plotSweep draws the scaling sweep side by side: convergence time of the
// operator and the baseline, and the operator's memory, against members.
func plotSweep(path string, results []result) error {
	var opTime, baseTime, rss, heap plotter.XYs
	for _, r := range results {
		if !isSweep(r) {
			continue
		}
		x := float64(r.Members)
		opTime = append(opTime, plotter.XY{X: x, Y: r.OperatorSeconds})
		baseTime = append(baseTime, plotter.XY{X: x, Y: r.BaselineSeconds})
		rss = append(rss, plotter.XY{X: x, Y: mib(float64(r.RSSBytes))})
		heap = append(heap, plotter.XY{X: x, Y: mib(float64(r.HeapBytes))})
	}
	conv := plot.New()
	conv.Title.Text = "Convergence, 50 MyResources"
	conv.X.Label.Text, conv.Y.Label.Text = membersAxis, "seconds to all Ready"
	if err := plotutil.AddLinePoints(conv, "hub-operator", opTime, "client-go baseline", baseTime); err != nil {
		return err
	}
	mem := plot.New()
	mem.Title.Text = "hub-operator memory"
	mem.X.Label.Text, mem.Y.Label.Text = membersAxis, "MiB"
	if err := plotutil.AddLinePoints(mem, "RSS", rss, "Go heap in use", heap); err != nil {
		return err
	}
	return drawRow(path, []*plot.Plot{conv, mem})
}

// drawRow draws plots side by side into the PNG at path.
func drawRow(path string, plots []*plot.Plot) error {
	for _, p := range plots {
		p.Y.Min = 0
		p.Legend.Top, p.Legend.Left = true, true
	}
	img := vgimg.New(vg.Points(float64(450*len(plots))), vg.Points(380))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Points(20), PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(10)}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// plotDistribution draws (d): the latency CDF of the operator and the
// baseline at the largest member count, their P99 against members, and the
// operator's memory against members.
func plotDistribution(path string, results []result) error {
	var ds []result
	for _, r := range results {
		if r.Distribution != nil {
			ds = append(ds, r)
		}
	}
	largest := ds[len(ds)-1]
	cdf := plot.New()
	cdf.Title.Text = fmt.Sprintf("Distribution latency, %d members", largest.Members)
	cdf.X.Label.Text, cdf.Y.Label.Text = "seconds from the hub write to the member", "fraction of (MyResource, member)"
	d := largest.Distribution
	if err := plotutil.AddLines(cdf,
		"hub-operator create", cdfOf(d.Create.Samples), "baseline create", cdfOf(d.BaselineCreate.Samples),
		"hub-operator image", cdfOf(d.Change.Samples), "baseline image", cdfOf(d.BaselineChange.Samples)); err != nil {
		return err
	}
	var opCreate, baseCreate, opChange, baseChange, rss plotter.XYs
	for _, r := range ds {
		x, d := float64(r.Members), r.Distribution
		opCreate = append(opCreate, plotter.XY{X: x, Y: d.Create.P99})
		baseCreate = append(baseCreate, plotter.XY{X: x, Y: d.BaselineCreate.P99})
		opChange = append(opChange, plotter.XY{X: x, Y: d.Change.P99})
		baseChange = append(baseChange, plotter.XY{X: x, Y: d.BaselineChange.P99})
		rss = append(rss, plotter.XY{X: x, Y: mib(float64(r.Final.RSSBytes))})
	}
	p99 := plot.New()
	p99.Title.Text = "P99 distribution latency"
	p99.X.Label.Text, p99.Y.Label.Text = membersAxis, "seconds"
	if err := plotutil.AddLinePoints(p99, "hub-operator create", opCreate, "baseline create", baseCreate,
		"hub-operator image", opChange, "baseline image", baseChange); err != nil {
		return err
	}
	mem := plot.New()
	mem.Title.Text = "hub-operator RSS"
	mem.X.Label.Text, mem.Y.Label.Text = membersAxis, "MiB"
	if err := plotutil.AddLinePoints(mem, "RSS after (d)", rss); err != nil {
		return err
	}
	return drawRow(path, []*plot.Plot{cdf, p99, mem})
}

// cdfOf is the empirical CDF of sorted samples.
func cdfOf(sorted []float64) plotter.XYs {
	xy := make(plotter.XYs, len(sorted))
	for i, v := range sorted {
		xy[i] = plotter.XY{X: v, Y: float64(i+1) / float64(len(sorted))}
	}
	return xy
}
