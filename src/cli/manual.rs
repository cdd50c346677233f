//! The parts of the man pages that clap does not know: EXIT STATUS, ENVIRONMENT, FILES and
//! EXAMPLES. Each page gets the first three; EXAMPLES are per command.
//!
//! Invariant: what these sections say is what `cli/error.rs` does (exit codes), what the workspace
//! module creates (files) and which variables the code reads (environment).

/// Worked examples for a command (`""` is the top page): (what it does, the command line).
fn examples(command: &str) -> &'static [(&'static str, &'static str)] {
    match command {
        "" => &[
            (
                "Make a workspace, register a night of snapshots and build a checked mosaic:",
                "contimg init ws && cd ws\n\
                 contimg ingest /data/2026-11-20/\n\
                 contimg plan --tier science --night 2026-11-20 | contimg build - | contimg qa -",
            ),
            (
                "Run the nightly pipeline from cron, every night at 03:00 UTC:",
                "contimg cron install",
            ),
        ],
        "init" => &[("Create a workspace in ./ws:", "contimg init ws")],
        "serve" => &[
            (
                "Serve on 127.0.0.1:8750 with one embedded worker, POSTs allowed with a token:",
                "CONTIMG_API_TOKEN=$(cat ~/.contimg-token) contimg serve",
            ),
            (
                "Ask for a mosaic of a window, then watch it:",
                "curl -H \"Authorization: Bearer $TOKEN\" -d '{\"pipeline\": \"on_demand_mosaic\", \"params\": {\"start\": \"2026-11-20T00:00Z\", \"end\": \"2026-11-21T00:00Z\"}}' http://127.0.0.1:8750/api/v1/runs\n\
                 curl http://127.0.0.1:8750/api/v1/executions/1",
            ),
            (
                "Beyond the loopback, workers elsewhere (needs a token):",
                "contimg serve --listen 0.0.0.0:8750 --workers 0",
            ),
        ],
        "simulate" => &[
            (
                "Two hours of drift scan across RA 0h, 24 snapshots:",
                "contimg simulate --out night --images 24 --start 2026-11-20T03:00:00Z",
            ),
            (
                "A benchmark set:",
                "contimg simulate --out big --images 64 --size 2048 --cell 6",
            ),
        ],
        "ingest" => &[
            (
                "Every FITS file below a directory:",
                "contimg ingest night/",
            ),
            (
                "Paths from another program:",
                "find /data -name '*.fits' -newer stamp | contimg ingest -",
            ),
        ],
        "images" => &[(
            "Images of one night with rms below 1 mJy/beam:",
            "contimg images --since 2026-11-20 --until 2026-11-21 --max-rms 0.001",
        )],
        "tiers" => &[("The tiers as JSON:", "contimg tiers --json")],
        "plan" => &[
            (
                "The science tier for one night:",
                "contimg plan --tier science --night 2026-11-20 > plan.json",
            ),
            (
                "The last six hours, tier chosen from the window:",
                "contimg plan --tier auto --last 6h",
            ),
        ],
        "build" => &[
            (
                "From a plan manifest:",
                "contimg build plan.json > mosaic.json",
            ),
            ("From a recorded plan:", "contimg build --plan 3"),
        ],
        "qa" => &[(
            "Check a mosaic against NVSS:",
            "contimg build --plan 3 | contimg qa - --reference NVSSVZ.FIT.gz",
        )],
        "run" => &[
            (
                "Backfill one night:",
                "contimg run nightly_mosaic --slot 2026-11-21T03:00Z",
            ),
            (
                "An on-demand window:",
                "contimg run on_demand_mosaic --param start=2026-11-20T00:00Z --param end=2026-11-21T00:00Z",
            ),
            (
                "Every missed night since the last success (what cron runs after downtime):",
                "contimg run nightly_mosaic --catch-up",
            ),
        ],
        "worker" => &[(
            "Drain the queue until nothing is left to claim:",
            "contimg worker --once",
        )],
        "status" => &[
            ("The executions, newest first:", "contimg status"),
            (
                "One execution's jobs, attempts and logs:",
                "contimg status 3",
            ),
        ],
        "retry" => &[("Re-run execution 3's failed jobs:", "contimg retry 3")],
        "cancel" => &[("Stop execution 3:", "contimg cancel 3")],
        "absurd-task" => &[(
            "Run task calibrate on the site's ABSURD queue and print its result:",
            "export SITE_PG=postgres://contimg@db/site\ncontimg absurd-task --queue site --task calibrate --params '{\"scan\": 7}' --database-env SITE_PG",
        )],
        "pipelines" => &[(
            "Validate every pipeline definition:",
            "contimg pipelines check",
        )],
        "cron" => &[
            ("See the lines first:", "contimg cron print"),
            (
                "Put them in your crontab, or take them out:",
                "contimg cron install\ncontimg cron remove",
            ),
        ],
        "notifications" => &[("The outbox as JSON:", "contimg notifications --json")],
        "completions" => &[(
            "bash completion for this shell session:",
            "source <(contimg completions bash)",
        )],
        "man" => &[("Write every page into man/:", "contimg man --out man")],
        _ => &[],
    }
}

/// Escapes text for roff: a leading dot or quote would be read as a request, a backslash as an
/// escape.
fn roff_text(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

const EXIT_STATUS: &str = ".SH \"EXIT STATUS\"
An error is printed on standard error as \\fBcontimg: error:\\fR and what failed, then one
\\fBcaused by:\\fR line for each cause under it.
.TP
\\fB0\\fR
Success. A closed standard output (e.g. \\fBcontimg images | head\\fR) is not an error.
.TP
\\fB1\\fR
The work failed: a file that could not be ingested, no image in a plan's window, a failed build,
a QA verdict of FAIL, a pipeline execution that did not complete; or a fault of contimg's own
files: a corrupt, empty or unreadable database, an unreadable contimg.toml.
.TP
\\fB2\\fR
Usage or input error: bad flags, a manifest that is not one or names a changed file, an unknown
plan or execution, a bad contimg.toml, a database written by a newer contimg (left untouched).
.TP
\\fB3\\fR
The work failed for good: the data it was given can never make the product, e.g. a plan's window
holds images but every one was left out (noise, band, resolution; each named with the fix).
A pipeline does not retry a contimg job that exits 3.
";

const ENVIRONMENT: &str = ".SH ENVIRONMENT
.TP
\\fBCONTIMG_WORKSPACE\\fR
The workspace directory, as \\fB\\-C\\fR gives it.
.TP
\\fBCONTIMG_DB\\fR
The database, as \\fB\\-\\-db\\fR gives it.
.TP
\\fBCONTIMG_PG_SCHEMA\\fR
contimg's schema when the database is a postgres:// URL (over \\fB[postgres] schema\\fR; default \\fIcontimg\\fR).
.TP
\\fBCONTIMG_ABSURD_QUEUE\\fR
The ABSURD queue name (over \\fB[postgres] queue\\fR; default \\fIcontimg\\fR).
.TP
\\fBPGPASSWORD\\fR, \\fBPGSSLROOTCERT\\fR
The password of a postgres:// URL that holds none; a PEM file of CA certificates trusted for \\fIsslmode=require\\fR.
.TP
\\fBCONTIMG_CRONTAB\\fR
The crontab program and its arguments for \\fBcontimg cron\\fR (default: \\fIcrontab\\fR; e.g. \\fIcrontab \\-u astro\\fR).
.TP
\\fBCONTIMG_WEBHOOK_URL\\fR
The webhook URL of notification rules that name none (the variable is named by
\\fBwebhook_url_env\\fR in contimg.toml).
";

const FILES: &str = ".SH FILES
.TP
\\fIcontimg.toml\\fR
The workspace's configuration, every default written out by \\fBcontimg init\\fR; its presence marks a workspace.
.TP
\\fIpipeline.sqlite3\\fR
The database: images, plans, mosaics, QA, executions, the queue and the notification outbox.
.TP
\\fImosaics/\\fR
Mosaics with their weight and expected-noise maps, QA products and pictures.
.TP
\\fIlogs/\\fR
One log per job attempt, the cron logs and \\fInotifications.log\\fR.
";

/// The extra sections for the page of `command` (`""` for the top page), as roff.
pub fn extra_sections(command: &str) -> String {
    let mut out = String::new();
    out.push_str(EXIT_STATUS);
    out.push_str(ENVIRONMENT);
    out.push_str(FILES);
    let ex = examples(command);
    if !ex.is_empty() {
        out.push_str(".SH EXAMPLES\n");
        for (what, cmd) in ex {
            out.push_str(&format!(".PP\n{}\n.PP\n.RS 4\n.nf\n", roff_text(what)));
            for line in cmd.lines() {
                out.push_str(&roff_text(line));
                out.push('\n');
            }
            out.push_str(".fi\n.RE\n");
        }
    }
    out
}

/// Puts the extra sections into a page rendered by clap_mangen, before its VERSION section (or at
/// the end when it has none).
pub fn with_extra_sections(page: &[u8], command: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(page);
    let extra = extra_sections(command);
    let out = match text.find("\n.SH VERSION") {
        Some(i) => format!("{}\n{}{}", &text[..i], extra, &text[i + 1..]),
        None => format!("{text}{extra}"),
    };
    out.into_bytes()
}

/// Every subcommand has examples, so that `man contimg-X` always shows how it is called.
#[cfg(test)]
mod tests {
    #[test]
    fn every_subcommand_has_examples_and_the_sections_are_roff() {
        for sub in super::super::command().get_subcommands() {
            let name = sub.get_name();
            if name == "help" {
                continue;
            }
            assert!(
                !super::examples(name).is_empty(),
                "no EXAMPLES for `contimg {name}`"
            );
        }
        let s = super::extra_sections("qa");
        for h in [
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH FILES",
            ".SH EXAMPLES",
        ] {
            assert!(s.contains(h), "{h} missing");
        }
        assert_eq!(super::roff_text(".hidden"), "\\&.hidden");
    }
}
