//! A timeline drawn as one SVG document: per execution a header (what, when, the verdict), on a
//! big push a summary strip (counts by outcome, the slowest services), one row per service with
//! its phases as bars on a shared time axis, its outcome and its reason; a legend at the end.
//! Pure and self-contained: no scripts, no fonts or images fetched, every text escaped.

use super::timeline::{Phase, PhaseKind, Row, Timeline};
use crate::output::{self, short, Exit};
use std::fmt::Write;

pub const SUCCEEDED_GREEN: &str = "#2e7d32";
pub const ROLLED_BACK_ORANGE: &str = "#ef6c00";
pub const FAILED_RED: &str = "#c62828";
pub const NOT_DEPLOYED_GREY: &str = "#8d8d8d";
pub const RUNNING_BLUE: &str = "#1565c0";

/// The outcome colours, as the legend names them.
pub const OUTCOME_LEGEND: [(&str, &str); 5] = [
    ("SUCCEEDED", SUCCEEDED_GREEN),
    ("ROLLED_BACK", ROLLED_BACK_ORANGE),
    ("FAILED / ROLLBACK_FAILED", FAILED_RED),
    ("SKIPPED / SUPERSEDED", NOT_DEPLOYED_GREY),
    ("RUNNING", RUNNING_BLUE),
];

/// A service's (or an execution's) status → its colour.
pub fn outcome_colour(status: &str) -> &'static str {
    match status {
        "SUCCEEDED" => SUCCEEDED_GREEN,
        "ROLLED_BACK" => ROLLED_BACK_ORANGE,
        "SKIPPED" | "SUPERSEDED" => NOT_DEPLOYED_GREY,
        "RUNNING" => RUNNING_BLUE,
        _ => FAILED_RED,
    }
}

/// Phase colours: pale, so that they never read as an outcome.
pub fn phase_colour(kind: PhaseKind) -> &'static str {
    match kind {
        PhaseKind::Plan => "#b0bec5",
        PhaseKind::Approval => "#d1b3e0",
        PhaseKind::Lock => "#f3e27a",
        PhaseKind::Rollout => "#7fbfef",
        PhaseKind::Bake => "#8fd3c9",
        PhaseKind::Rollback => "#f2a7c3",
    }
}

fn verdict_colour(timeline: &Timeline) -> &'static str {
    match timeline.exit {
        None => RUNNING_BLUE,
        Some(Exit::Ok) if timeline.rows.iter().all(|r| r.status == "ROLLED_BACK") && !timeline.rows.is_empty() => {
            ROLLED_BACK_ORANGE
        }
        Some(Exit::Ok) => SUCCEEDED_GREEN,
        Some(Exit::NothingDeployed) => NOT_DEPLOYED_GREY,
        Some(Exit::Failed | Exit::BadInput) if timeline.rows.iter().any(|r| r.status == "ROLLED_BACK") => {
            ROLLED_BACK_ORANGE
        }
        Some(Exit::Failed | Exit::BadInput) => FAILED_RED,
    }
}

/// Pushes with more services than this get a summary strip above their rows.
pub const SUMMARY_ABOVE: usize = 12;
/// Services the summary strip names as the slowest.
pub const SLOWEST_NAMED: usize = 5;

const WIDTH: f64 = 1280.0;
const MARGIN: f64 = 16.0;
const LABEL_WIDTH: f64 = 250.0;
const ROW_HEIGHT: f64 = 50.0;
const AXIS_HEIGHT: f64 = 24.0;
const FONT: &str = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif";
/// Roughly how wide a character of the 12px text is, to cut long reasons to their row.
const CHAR_WIDTH: f64 = 6.8;

/// Text for XML: escaped, without the control characters XML cannot hold, and cut to `max`
/// characters (with an ellipsis) so that it stays in its place.
pub fn escape(text: &str, max: usize) -> String {
    let clean: Vec<char> = text.chars().filter(|c| !c.is_control() || *c == '\t').collect();
    let cut: String = if clean.len() > max {
        clean[..max.saturating_sub(1)].iter().chain(['…'].iter()).collect()
    } else {
        clean.into_iter().collect()
    };
    let mut escaped = String::with_capacity(cut.len());
    for c in cut.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Image digests as their first 12 hex digits (as `docker images` shows them): a row's text is
/// read, and the whole text stays in its tooltip.
fn shorter_digests(text: &str) -> String {
    const DIGEST: &str = "sha256:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find(DIGEST) {
        let (before, after) = rest.split_at(found + DIGEST.len());
        out.push_str(before);
        let hex = after.chars().take_while(char::is_ascii_hexdigit).count();
        if hex == 64 {
            out.push_str(&after[..12]);
            out.push('…');
            rest = &after[64..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Full text for a tooltip or an attribute.
fn whole(text: &str) -> String {
    escape(text, usize::MAX)
}

/// The SVG document of `timelines`, one below the other.
pub fn render(timelines: &[Timeline]) -> String {
    let mut body = String::new();
    let mut y = MARGIN;
    for timeline in timelines {
        y = section(&mut body, timeline, y) + 24.0;
    }
    y = legend(&mut body, y);
    let height = (y + MARGIN).ceil();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" \
         font-family=\"{FONT}\" font-size=\"12\" role=\"img\">\n<title>deckhand report</title>\n\
         <rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{height}\" fill=\"#ffffff\"/>\n{body}</svg>\n"
    )
}

/// Maps times to x on the chart's part of the width.
struct Axis {
    start: f64,
    seconds: f64,
    left: f64,
    width: f64,
}

impl Axis {
    fn x(&self, at: f64) -> f64 {
        self.left + ((at - self.start) / self.seconds).clamp(0.0, 1.0) * self.width
    }

    /// A round step giving about eight ticks.
    fn step(&self) -> f64 {
        const STEPS: [f64; 16] = [
            1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 43200.0,
        ];
        STEPS.into_iter().find(|step| self.seconds / step <= 8.0).unwrap_or(86400.0)
    }
}

fn section(out: &mut String, timeline: &Timeline, top: f64) -> f64 {
    let mut y = top;
    let took = output::duration(timeline.last() - timeline.start);
    let _ = writeln!(
        out,
        "<g class=\"execution\" data-execution=\"{}\" data-status=\"{}\">",
        whole(&timeline.execution),
        whole(&timeline.status)
    );
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN}\" y=\"{}\" font-size=\"18\" font-weight=\"bold\" fill=\"#222\">deckhand report · {}</text>",
        y + 18.0,
        escape(short(&timeline.execution), 80)
    );
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN}\" y=\"{}\" font-size=\"13\" fill=\"#555\">execution {} · started {} · {took} · {} service{}</text>",
        y + 38.0,
        escape(&timeline.status, 20),
        output::time(timeline.start),
        timeline.rows.len(),
        if timeline.rows.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        out,
        "<text class=\"verdict\" x=\"{MARGIN}\" y=\"{}\" font-size=\"15\" font-weight=\"bold\" fill=\"{}\">{}<title>{}</title></text>",
        y + 62.0,
        verdict_colour(timeline),
        escape(&shorter_digests(&timeline.verdict), ((WIDTH - 2.0 * MARGIN) / 9.0) as usize),
        whole(&timeline.verdict)
    );
    y += 76.0;
    if timeline.rows.len() > SUMMARY_ABOVE {
        y = summary(out, timeline, y);
    }
    let left = MARGIN + LABEL_WIDTH;
    let seconds = (timeline.last() - timeline.start).max(1.0);
    let axis = Axis { start: timeline.start, seconds, left, width: WIDTH - MARGIN - left };
    let rows = timeline.rows.len() + usize::from(timeline.plan.is_some());
    let bottom = y + AXIS_HEIGHT + rows as f64 * ROW_HEIGHT;
    ticks(out, &axis, y, bottom);
    y += AXIS_HEIGHT;
    if let Some(plan) = &timeline.plan {
        plan_row(out, &axis, plan, y);
        y += ROW_HEIGHT;
    }
    for (index, row) in timeline.rows.iter().enumerate() {
        service_row(out, &axis, row, y, index);
        y += ROW_HEIGHT;
    }
    out.push_str("</g>\n");
    y
}

fn summary(out: &mut String, timeline: &Timeline, top: f64) -> f64 {
    let height = 56.0;
    let _ = writeln!(
        out,
        "<g class=\"summary\"><rect x=\"{MARGIN}\" y=\"{top}\" width=\"{}\" height=\"{height}\" rx=\"6\" fill=\"#f3f4f6\" stroke=\"#d9dce1\"/>",
        WIDTH - 2.0 * MARGIN
    );
    let mut x = MARGIN + 12.0;
    let line = top + 22.0;
    let _ = writeln!(
        out,
        "<text x=\"{x}\" y=\"{line}\" font-size=\"13\" font-weight=\"bold\" fill=\"#222\">{} services:</text>",
        timeline.rows.len()
    );
    x += 110.0;
    for (status, count) in timeline.counts() {
        let label = format!("{count} {status}");
        let _ = writeln!(
            out,
            "<rect class=\"count\" x=\"{x}\" y=\"{}\" width=\"14\" height=\"14\" rx=\"2\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{line}\" font-size=\"13\" fill=\"#222\">{}</text>",
            line - 11.0,
            outcome_colour(&status),
            x + 19.0,
            escape(&label, 40)
        );
        x += 36.0 + label.chars().count() as f64 * 8.2;
    }
    let slowest: Vec<String> = timeline
        .slowest(SLOWEST_NAMED)
        .iter()
        .map(|row| format!("{} {}", row.name, output::duration(row.seconds())))
        .collect();
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#444\">slowest: {}</text></g>",
        MARGIN + 12.0,
        top + 44.0,
        escape(&slowest.join(" · "), 170)
    );
    top + height + 8.0
}

fn ticks(out: &mut String, axis: &Axis, top: f64, bottom: f64) {
    let step = axis.step();
    let mut offset = 0.0;
    out.push_str("<g class=\"axis\">\n");
    while offset <= axis.seconds + 1e-6 {
        let x = axis.x(axis.start + offset);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"#e3e3e3\"/>\
             <text x=\"{x:.1}\" y=\"{}\" font-size=\"11\" fill=\"#777\" text-anchor=\"middle\">+{}</text>",
            top + AXIS_HEIGHT - 4.0,
            top + 14.0,
            output::duration(offset)
        );
        offset += step;
    }
    out.push_str("</g>\n");
}

fn bar(out: &mut String, axis: &Axis, phase: &Phase, y: f64) {
    let x = axis.x(phase.start);
    let width = (axis.x(phase.end) - x).max(3.0);
    let took = output::duration(phase.end - phase.start);
    let what = match &phase.counts {
        Some(counts) => format!("{} {took}: {counts}", phase.kind.label()),
        None => format!("{} {took}", phase.kind.label()),
    };
    let _ = write!(
        out,
        "<rect class=\"phase\" data-phase=\"{}\" x=\"{x:.1}\" y=\"{y}\" width=\"{width:.1}\" height=\"18\" rx=\"3\" fill=\"{}\"><title>{}</title></rect>",
        phase.kind.label(),
        phase_colour(phase.kind),
        whole(&what)
    );
    // The counts where they fit in the bar; else only in its tooltip.
    if let Some(counts) = &phase.counts {
        if counts.chars().count() as f64 * 6.2 + 8.0 <= width {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" fill=\"#1d2b36\">{}</text>",
                x + 4.0,
                y + 13.0,
                escape(counts, 60)
            );
        }
    }
    out.push('\n');
}

fn label(out: &mut String, name: &str, y: f64) {
    let _ = writeln!(
        out,
        "<text class=\"service\" x=\"{MARGIN}\" y=\"{}\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">{}<title>{}</title></text>",
        y + 18.0,
        escape(name, 30),
        whole(name)
    );
}

fn plan_row(out: &mut String, axis: &Axis, plan: &Phase, y: f64) {
    let _ = writeln!(out, "<g class=\"row push\">");
    label(out, "push", y);
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN}\" y=\"{}\" font-size=\"11\" fill=\"#666\">which services to deploy</text>",
        y + 36.0
    );
    bar(out, axis, plan, y + 5.0);
    out.push_str("</g>\n");
}

fn service_row(out: &mut String, axis: &Axis, row: &Row, y: f64, index: usize) {
    let colour = outcome_colour(&row.status);
    let _ =
        writeln!(out, "<g class=\"row\" data-service=\"{}\" data-status=\"{}\">", whole(&row.name), whole(&row.status));
    if index.is_multiple_of(2) {
        let _ = writeln!(
            out,
            "<rect x=\"{MARGIN}\" y=\"{y}\" width=\"{}\" height=\"{ROW_HEIGHT}\" fill=\"#f7f8fa\"/>",
            WIDTH - 2.0 * MARGIN
        );
    }
    label(out, &row.name, y);
    // The outcome: a badge under the name, and the service execution's span on the axis.
    let _ = writeln!(
        out,
        "<rect class=\"outcome\" x=\"{MARGIN}\" y=\"{}\" width=\"150\" height=\"18\" rx=\"3\" fill=\"{colour}\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" font-weight=\"bold\" fill=\"#ffffff\">{}</text>",
        y + 26.0,
        MARGIN + 6.0,
        y + 39.0,
        escape(&row.status, 22)
    );
    let end = row.end.unwrap_or(row.start + row.seconds());
    let (from, to) = (axis.x(row.start), axis.x(end));
    let _ = writeln!(
        out,
        "<rect class=\"span\" x=\"{from:.1}\" y=\"{}\" width=\"{:.1}\" height=\"4\" fill=\"{colour}\"><title>{} {}</title></rect>\
         <rect x=\"{:.1}\" y=\"{}\" width=\"5\" height=\"22\" fill=\"{colour}\"/>",
        y + 25.0,
        (to - from).max(3.0),
        whole(&row.status),
        output::duration(row.seconds()),
        (to - 5.0).max(from),
        y + 3.0
    );
    for phase in &row.phases {
        bar(out, axis, phase, y + 5.0);
    }
    let room = ((WIDTH - MARGIN - axis.left) / CHAR_WIDTH) as usize;
    let _ = writeln!(
        out,
        "<text class=\"reason\" x=\"{:.1}\" y=\"{}\" font-size=\"12\" fill=\"#333\">{}<title>{}</title></text>",
        axis.left,
        y + 44.0,
        escape(&shorter_digests(&row.reason), room),
        whole(&row.reason)
    );
    out.push_str("</g>\n");
}

fn legend(out: &mut String, top: f64) -> f64 {
    let mut x = MARGIN;
    let line = top + 14.0;
    out.push_str("<g class=\"legend\">\n");
    let _ =
        writeln!(out, "<text x=\"{x}\" y=\"{line}\" font-size=\"12\" font-weight=\"bold\" fill=\"#444\">phases</text>");
    x += 56.0;
    for kind in PhaseKind::ALL {
        let _ = writeln!(
            out,
            "<rect x=\"{x}\" y=\"{}\" width=\"22\" height=\"12\" rx=\"2\" fill=\"{}\"/><text x=\"{}\" y=\"{line}\" fill=\"#444\">{}</text>",
            line - 10.0,
            phase_colour(kind),
            x + 27.0,
            kind.label()
        );
        x += 40.0 + kind.label().len() as f64 * 7.0;
    }
    let line = line + 22.0;
    let mut x = MARGIN;
    let _ = writeln!(
        out,
        "<text x=\"{x}\" y=\"{line}\" font-size=\"12\" font-weight=\"bold\" fill=\"#444\">outcomes</text>"
    );
    x += 68.0;
    for (status, colour) in OUTCOME_LEGEND {
        let _ = writeln!(
            out,
            "<rect x=\"{x}\" y=\"{}\" width=\"22\" height=\"12\" rx=\"2\" fill=\"{colour}\"/><text x=\"{}\" y=\"{line}\" fill=\"#444\">{}</text>",
            line - 10.0,
            x + 27.0,
            escape(status, 40)
        );
        x += 44.0 + status.len() as f64 * 8.2;
    }
    out.push_str("</g>\n");
    line + 8.0
}

/// The same picture as one self-contained HTML page: inline CSS, no scripts, nothing fetched
/// (a Content-Security-Policy that allows nothing else says so to the browser too).
pub fn page(timelines: &[Timeline]) -> String {
    let title = match timelines {
        [one] => format!("deckhand report: {}", short(&one.execution)),
        _ => format!("deckhand report: {} executions", timelines.len()),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <title>{}</title>\n<style>\nbody {{ margin: 0; background: #ffffff; font-family: {FONT}; }}\n\
         svg {{ display: block; }}\n</style>\n</head>\n<body>\n{}</body>\n</html>\n",
        escape(&title, 120),
        render(timelines)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(kind: PhaseKind, start: f64, end: f64, counts: Option<&str>) -> Phase {
        Phase { kind, start, end, counts: counts.map(str::to_string) }
    }

    fn row(name: &str, status: &str, reason: &str, start: f64, end: f64) -> Row {
        Row {
            name: name.into(),
            execution: format!("arn:aws:states:us-east-1:1:execution:deckhand-service:{name}"),
            start,
            end: Some(end),
            status: status.into(),
            reason: reason.into(),
            phases: vec![
                phase(PhaseKind::Plan, start, start + 1.0, None),
                phase(PhaseKind::Lock, start + 1.0, start + 2.0, None),
                phase(PhaseKind::Rollout, start + 2.0, end - 1.0, Some("2/2 tasks, 2/2 targets")),
            ],
        }
    }

    fn push(rows: Vec<Row>, exit: Exit, verdict: &str) -> Timeline {
        Timeline {
            execution: "arn:aws:states:us-east-1:1:execution:deckhand-deploy:push-1".into(),
            status: "FAILED".into(),
            start: 1_796_000_000.0,
            end: Some(1_796_000_090.0),
            verdict: verdict.into(),
            exit: Some(exit),
            plan: Some(phase(PhaseKind::Plan, 1_796_000_000.0, 1_796_000_001.5, None)),
            rows,
        }
    }

    /// The `<g class="row" …>` elements, in order.
    fn rows_of(svg: &str) -> Vec<&str> {
        svg.split("<g class=\"row\" ").skip(1).map(|rest| rest.split("</g>").next().unwrap_or_default()).collect()
    }

    #[test]
    fn each_service_is_a_row_in_its_outcomes_colour_with_its_phases_and_reason() {
        let start = 1_796_000_002.0;
        let timeline = push(
            vec![
                row("prod/api", "SUCCEEDED", "deployment COMPLETED: 2/2 tasks running", start, start + 60.0),
                row("prod/web", "ROLLED_BACK", "unhealthy; rolled back to web:7", start, start + 88.0),
                row("prod/jobs", "SKIPPED", "already on its image", start, start + 3.0),
            ],
            Exit::Failed,
            "rolled back (DeploymentRolledBack): push of flask-api:main",
        );
        let svg = render(&[timeline]);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
        let rows = rows_of(&svg);
        assert_eq!(rows.len(), 3);
        for (row, (name, colour)) in rows.iter().zip([
            ("prod/api", SUCCEEDED_GREEN),
            ("prod/web", ROLLED_BACK_ORANGE),
            ("prod/jobs", NOT_DEPLOYED_GREY),
        ]) {
            assert!(row.contains(&format!("data-service=\"{name}\"")), "{row}");
            assert!(row.contains(&format!("class=\"outcome\" x=\"{MARGIN}\"")) && row.contains(colour), "{row}");
            for phase in ["plan", "lock wait", "rollout"] {
                assert!(row.contains(&format!("data-phase=\"{phase}\"")), "{phase} in {row}");
            }
        }
        assert!(rows[0].contains(">2/2 tasks, 2/2 targets</text>"), "the counts in the rollout bar");
        assert!(rows[1].contains("unhealthy; rolled back to web:7"));
        assert!(svg.contains("rolled back (DeploymentRolledBack): push of flask-api:main"), "the verdict");
        assert!(svg.contains("class=\"row push\""), "the push's own plan");
        for (status, colour) in OUTCOME_LEGEND {
            assert!(
                svg.contains(&format!("fill=\"{colour}\"/><text")) && svg.contains(&escape(status, 40)),
                "{status}"
            );
        }
        assert!(!svg.contains("class=\"summary\""), "a small push has no summary strip");
    }

    #[test]
    fn names_and_reasons_are_escaped_for_xml() {
        let reason = "rejected: <script>alert(1)</script> & \"quotes\" 'too'\u{7}";
        let timeline = push(vec![row("prod/<api>", "SKIPPED", reason, 1.0, 2.0)], Exit::NothingDeployed, "x < y & z");
        let svg = render(&[timeline]);
        assert!(!svg.contains("<script>") && !svg.contains("<api>") && !svg.contains('\u{7}'));
        assert!(
            svg.contains("rejected: &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot; &apos;too&apos;")
        );
        assert!(svg.contains("data-service=\"prod/&lt;api&gt;\"") && svg.contains("x &lt; y &amp; z"));
        assert_eq!(escape("abcdef", 4), "abc…");
        let digest = format!("sha256:{}", "ab12".repeat(16));
        assert_eq!(
            shorter_digests(&format!("pushed as {digest}: 1 service")),
            "pushed as sha256:ab12ab12ab12…: 1 service"
        );
        assert_eq!(shorter_digests("sha256:abc and sha256:"), "sha256:abc and sha256:");
        let html = page(&[push(vec![], Exit::Ok, "deployed")]);
        assert!(
            html.starts_with("<!DOCTYPE html>") && html.contains("default-src 'none'") && !html.contains("<script")
        );
        assert!(html.contains("<svg xmlns="), "the picture is inline");
    }

    #[test]
    fn a_big_push_has_a_summary_strip_with_counts_and_the_five_slowest() {
        let start = 1_796_000_002.0;
        let rows: Vec<Row> = (0..20)
            .map(|i| {
                let status = if i % 5 == 0 { "ROLLED_BACK" } else { "SUCCEEDED" };
                row(&format!("prod/svc-{i:02}"), status, "r", start, start + 10.0 + f64::from(i))
            })
            .collect();
        let svg = render(&[push(rows, Exit::Failed, "rolled back")]);
        let strip = svg.split("<g class=\"summary\">").nth(1).and_then(|s| s.split("</g>").next()).expect("a strip");
        assert!(strip.contains(">20 services:</text>"), "{strip}");
        assert!(strip.contains(">16 SUCCEEDED</text>") && strip.contains(">4 ROLLED_BACK</text>"), "{strip}");
        assert!(
            strip.contains(
                "slowest: prod/svc-19 29s · prod/svc-18 28s · prod/svc-17 27s · prod/svc-16 26s · prod/svc-15 25s"
            ),
            "{strip}"
        );
        assert_eq!(rows_of(&svg).len(), 20);
    }
}
