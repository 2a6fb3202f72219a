//! Small server-rendered SVG charts (no script, no inline style: presentation
//! attributes and the stylesheet's classes only): a line chart of a rate per period,
//! with gaps where a period has no rate, and a bar chart of counts.

use maud::{html, Markup};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// One period's point: its label and its value (`None`: nothing to measure).
pub struct Point {
    pub label: String,
    pub value: Option<f64>,
}

fn x_of(i: usize, n: usize) -> f64 {
    let span = WIDTH - LEFT - RIGHT;
    if n <= 1 {
        LEFT + span / 2.0
    } else {
        LEFT + span * i as f64 / (n - 1) as f64
    }
}

fn y_of(fraction: f64) -> f64 {
    TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - fraction.clamp(0.0, 1.0))
}

/// The labels under the x axis: first, middle and last.
fn x_labels(points: &[Point]) -> Markup {
    let n = points.len();
    let mut shown: Vec<usize> = vec![0, n / 2, n.saturating_sub(1)];
    shown.dedup();
    html! {
        @for i in shown {
            @if let Some(p) = points.get(i) {
                text x=(format!("{:.1}", x_of(i, n))) y=(format!("{:.1}", HEIGHT - 8.0))
                    text-anchor="middle" { (p.label) }
            }
        }
    }
}

/// The runs of consecutive points that have a value, as polyline coordinates.
fn runs(points: &[Point]) -> Vec<String> {
    let n = points.len();
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        match p.value {
            Some(v) => current.push(format!("{:.1},{:.1}", x_of(i, n), y_of(v))),
            None if !current.is_empty() => out.push(std::mem::take(&mut current).join(" ")),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current.join(" "));
    }
    out
}

/// A rate (0–1) per period, shown as a percentage.
pub fn rate_chart(id: &str, title: &str, points: &[Point]) -> Markup {
    let n = points.len();
    html! {
        figure.chart id=(id) {
            figcaption { (title) }
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title)
                xmlns="http://www.w3.org/2000/svg" {
                @for tick in [0.0_f64, 0.25, 0.5, 0.75, 1.0] {
                    line.grid-line x1=(LEFT) x2=(WIDTH - RIGHT)
                        y1=(format!("{:.1}", y_of(tick))) y2=(format!("{:.1}", y_of(tick)));
                    text x=(LEFT - 6.0) y=(format!("{:.1}", y_of(tick) + 4.0)) text-anchor="end" {
                        (format!("{:.0}%", tick * 100.0))
                    }
                }
                line.axis x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(HEIGHT - BOTTOM);
                line.axis x1=(LEFT) x2=(WIDTH - RIGHT) y1=(HEIGHT - BOTTOM) y2=(HEIGHT - BOTTOM);
                @for run in runs(points) {
                    polyline.series points=(run);
                }
                @for (i, p) in points.iter().enumerate() {
                    @if let Some(v) = p.value {
                        circle.dot cx=(format!("{:.1}", x_of(i, n))) cy=(format!("{:.1}", y_of(v))) r="3" {
                            title { (p.label) ": " (format!("{:.1} %", v * 100.0)) }
                        }
                    }
                }
                (x_labels(points))
            }
        }
    }
}

/// A count per period, as bars.
pub fn count_chart(id: &str, title: &str, points: &[Point]) -> Markup {
    let n = points.len().max(1);
    let max = points
        .iter()
        .filter_map(|p| p.value)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let slot = (WIDTH - LEFT - RIGHT) / n as f64;
    let bar = (slot * 0.7).max(1.0);
    html! {
        figure.chart id=(id) {
            figcaption { (title) }
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title)
                xmlns="http://www.w3.org/2000/svg" {
                line.axis x1=(LEFT) x2=(WIDTH - RIGHT) y1=(HEIGHT - BOTTOM) y2=(HEIGHT - BOTTOM);
                text x=(LEFT - 6.0) y=(TOP + 4.0) text-anchor="end" { (format!("{max:.0}")) }
                text x=(LEFT - 6.0) y=(HEIGHT - BOTTOM + 4.0) text-anchor="end" { "0" }
                @for (i, p) in points.iter().enumerate() {
                    @let v = p.value.unwrap_or(0.0);
                    @let top = y_of(v / max);
                    rect.bar x=(format!("{:.1}", LEFT + slot * i as f64 + (slot - bar) / 2.0))
                        y=(format!("{top:.1}")) width=(format!("{bar:.1}"))
                        height=(format!("{:.1}", (HEIGHT - BOTTOM - top).max(0.0))) {
                        title { (p.label) ": " (format!("{v:.0}")) }
                    }
                }
                @for (i, p) in points.iter().enumerate() {
                    @if i == 0 || i + 1 == points.len() || i == points.len() / 2 {
                        text x=(format!("{:.1}", LEFT + slot * (i as f64 + 0.5))) y=(format!("{:.1}", HEIGHT - 8.0))
                            text-anchor="middle" { (p.label) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(values: &[Option<f64>]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                label: format!("d{i}"),
                value: *v,
            })
            .collect()
    }

    #[test]
    fn gaps_split_the_line() {
        let runs = runs(&points(&[Some(0.5), Some(1.0), None, Some(0.0)]));
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].split(' ').count(), 2);
        assert_eq!(runs[1].split(' ').count(), 1);
    }

    #[test]
    fn charts_are_svg_without_inline_style() {
        let svg = rate_chart("r", "No-show <rate>", &points(&[Some(0.1), Some(0.2)])).into_string();
        assert!(svg.contains("<svg") && svg.contains("polyline"), "{svg}");
        assert!(!svg.contains("style="), "{svg}");
        assert!(svg.contains("No-show &lt;rate&gt;"), "{svg}");
        let bars = count_chart("c", "Appointments", &points(&[Some(3.0), None])).into_string();
        assert_eq!(bars.matches("<rect").count(), 2, "{bars}");
    }
}
