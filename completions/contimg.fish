# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_contimg_global_optspecs
    string join \n C/workspace= db= q/quiet v/verbose no-progress h/help V/version
end

function __fish_contimg_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_contimg_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_contimg_using_subcommand
    set -l cmd (__fish_contimg_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c contimg -n "__fish_contimg_needs_command" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_needs_command" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_needs_command" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_needs_command" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_needs_command" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_needs_command" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "init" -d 'Create a workspace (contimg.toml, database, mosaics/, logs/)'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "simulate" -d 'Write simulated drift-scan snapshots and their truth catalogue'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "ingest" -d 'Register FITS images (centre, time, rms, beam, frequency, hash)'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "images" -d 'List registered images, ordered by observation time'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "tiers" -d 'Show the mosaic tiers in force'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "plan" -d 'Select images for a mosaic and record the plan'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "build" -d 'Build a plan\'s mosaic, weight map and expected-noise map'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "qa" -d 'Quality-check a mosaic and record the verdict'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "run" -d 'Run a pipeline for one slot, or for every missed slot'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "worker" -d 'Claim and run queued tasks (more processes or machines)'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "status" -d 'Show the executions, or one execution\'s jobs'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "retry" -d 'Re-run an execution\'s failed and cancelled jobs'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "cancel" -d 'Cancel an execution'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "serve" -d 'Serve the HTTP API and the status page, with embedded workers.'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "absurd-task" -d 'Run one task on an ABSURD queue and print its result'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "pipelines" -d 'List the pipelines, or validate them with `check`'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "cron" -d 'Schedule the workspace\'s pipelines with the system crontab'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "notifications" -d 'List the failure notifications and their delivery'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "man" -d 'Write the man pages'
complete -c contimg -n "__fish_contimg_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c contimg -n "__fish_contimg_using_subcommand init" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand init" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand init" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand init" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand init" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand init" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l out -d 'Output directory (created if missing)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l images -d 'Number of snapshots' -r
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l size -d 'Image side in pixels' -r
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l cell -d 'Pixel size in arcsec' -r
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l dec -d 'Declination of the strip in degrees' -r
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l start -d 'Start of the first snapshot, ISO-8601 UTC or MJD' -r
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l cadence -d 'Seconds between snapshots' -r
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l seed -d 'Random seed for the sky and the noise' -r
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l ra-start -d 'RA of the first snapshot in degrees (default: the sidereal time at OVRO at --start)' -r
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l freq -d 'Observing frequency in Hz' -r
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l noise -d 'Base noise rms in Jy/beam (each snapshot gets this times a factor in [0.7, 1.4])' -r
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l telescope -d 'Telescope whose primary beam attenuates the sky (TELESCOP): DSA-110, VLA, ATCA, MeerKAT, ASKAP, GMRT or WSRT' -r
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l pb-images -d 'Also write a primary-beam image <stem>.pb.fits per snapshot'
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand simulate" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand ingest" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand ingest" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand ingest" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand ingest" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand ingest" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand ingest" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand ingest" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand images" -l since -d 'Only images observed at or after this time (ISO-8601 UTC or MJD)' -r
complete -c contimg -n "__fish_contimg_using_subcommand images" -l until -d 'Only images observed before this time (ISO-8601 UTC or MJD)' -r
complete -c contimg -n "__fish_contimg_using_subcommand images" -l max-rms -d 'Only images whose rms is at most this (Jy/beam)' -r
complete -c contimg -n "__fish_contimg_using_subcommand images" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand images" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand images" -l json -d 'Print JSON even on a terminal'
complete -c contimg -n "__fish_contimg_using_subcommand images" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand images" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand images" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand images" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand images" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand tiers" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand tiers" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand tiers" -l json -d 'Print JSON even on a terminal'
complete -c contimg -n "__fish_contimg_using_subcommand tiers" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand tiers" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand tiers" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand tiers" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand tiers" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand plan" -l tier -d 'Tier name (a built-in below or a `[tiers.NAME]` of contimg.toml; see `contimg tiers`), or `auto` to choose from the window length' -r -f -a "quicklook\t'fast look at recent data; no astrometry check'
science\t'nightly science mosaic; astrometry required'
deep\t'multi-night deep mosaic; astrometry required'
auto\t'choose from the window: < 1 h quicklook, > 48 h deep, else science'"
complete -c contimg -n "__fish_contimg_using_subcommand plan" -l start -d 'Window start (inclusive), ISO-8601 UTC or MJD' -r
complete -c contimg -n "__fish_contimg_using_subcommand plan" -l end -d 'Window end (exclusive), ISO-8601 UTC or MJD' -r
complete -c contimg -n "__fish_contimg_using_subcommand plan" -l last -d 'Window of this length ending now: e.g. 90m, 24h, 7d' -r
complete -c contimg -n "__fish_contimg_using_subcommand plan" -l night -d 'The UTC day YYYY-MM-DD: [00:00, 24:00)' -r
complete -c contimg -n "__fish_contimg_using_subcommand plan" -l name -d 'Plan name (default: tier and window, e.g. science_20261120T000000_20261121T000000)' -r
complete -c contimg -n "__fish_contimg_using_subcommand plan" -l dec-min -d 'Only images whose centre is at or above this declination (deg)' -r
complete -c contimg -n "__fish_contimg_using_subcommand plan" -l dec-max -d 'Only images whose centre is at or below this declination (deg)' -r
complete -c contimg -n "__fish_contimg_using_subcommand plan" -l ra-min -d 'Only images whose centre RA is at or above this (deg); with --ra-max < --ra-min the box crosses 0h' -r
complete -c contimg -n "__fish_contimg_using_subcommand plan" -l ra-max -d 'Only images whose centre RA is at or below this (deg)' -r
complete -c contimg -n "__fish_contimg_using_subcommand plan" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand plan" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand plan" -l replace -d 'Replace an existing plan of the same name that selected different images'
complete -c contimg -n "__fish_contimg_using_subcommand plan" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand plan" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand plan" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand plan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand plan" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand build" -l plan -d 'Build the recorded plan with this id' -r
complete -c contimg -n "__fish_contimg_using_subcommand build" -l cell -d 'Output pixel size in arcsec (default: the median of the inputs)' -r
complete -c contimg -n "__fish_contimg_using_subcommand build" -l projection -d 'Output projection (default from contimg.toml: auto = SIN for compact fields, CAR for strips wider than 10°)' -r -f -a "auto\t''
SIN\t''
TAN\t''
CAR\t''"
complete -c contimg -n "__fish_contimg_using_subcommand build" -l interpolation -d 'Interpolation kernel (default: the tier\'s; see `contimg tiers`)' -r -f -a "nearest\t''
bilinear\t''
bicubic\t''
lanczos3\t''"
complete -c contimg -n "__fish_contimg_using_subcommand build" -l pb-cutoff -d 'Primary-beam cut-off in (0, 1) (default from contimg.toml: 0.1)' -r
complete -c contimg -n "__fish_contimg_using_subcommand build" -l primary-beam -d 'Primary beam: `auto` (a <stem>.pb.fits beside an input, else its telescope\'s model), `model` (the model of each input\'s TELESCOP: DSA-110, VLA, ATCA, MeerKAT, ASKAP, GMRT, WSRT or [build.telescopes] in contimg.toml), `image` (the beam image, required), or `unity` (A = 1: inputs already corrected and of unknown beam)' -r -f -a "auto\t''
model\t''
image\t''
unity\t''"
complete -c contimg -n "__fish_contimg_using_subcommand build" -l frequency -d 'Observing frequency in Hz for inputs whose header gives none (no RESTFRQ, no FREQ axis)' -r
complete -c contimg -n "__fish_contimg_using_subcommand build" -l out-dir -d 'Directory for the mosaic and its maps (default: the workspace\'s mosaics directory, from `[paths] mosaics`). A pipeline\'s build job gets the directory recorded with its execution, so the products land there whichever worker builds them' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand build" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand build" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand build" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand build" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand build" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand build" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand build" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand qa" -l mosaic -d 'Check the mosaic with this id in the database instead of reading a manifest' -r
complete -c contimg -n "__fish_contimg_using_subcommand qa" -l reference -d 'Reference catalogue (overrides the tier\'s and [qa]\'s `reference` in contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand qa" -l ra-column -d 'The reference catalogue\'s RA column (default: recognised by name, e.g. RAJ2000)' -r
complete -c contimg -n "__fish_contimg_using_subcommand qa" -l dec-column -d 'The reference catalogue\'s Dec column (default: recognised by name, e.g. DEJ2000)' -r
complete -c contimg -n "__fish_contimg_using_subcommand qa" -l flux-column -d 'The reference catalogue\'s flux column (default: recognised by name, e.g. S1.4, PEAK)' -r
complete -c contimg -n "__fish_contimg_using_subcommand qa" -l out-dir -d 'Write the source catalogues, rms map and PNGs here instead of beside the mosaic' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand qa" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand qa" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand qa" -l no-pictures -d 'Do not draw the PNGs'
complete -c contimg -n "__fish_contimg_using_subcommand qa" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand qa" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand qa" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand qa" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand qa" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand run" -l slot -d 'The slot: ISO-8601 UTC or MJD, `now` (default), or `scheduled` (the latest time at or before now that the pipeline\'s schedule fires)' -r
complete -c contimg -n "__fish_contimg_using_subcommand run" -l param -d 'A pipeline parameter, `key=value` (repeatable)' -r
complete -c contimg -n "__fish_contimg_using_subcommand run" -l workers -d 'Worker threads working the execution (each job still runs in its own process)' -r
complete -c contimg -n "__fish_contimg_using_subcommand run" -l lease -d 'Lease length: a task whose worker stops heartbeating this long is retried by another worker' -r
complete -c contimg -n "__fish_contimg_using_subcommand run" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand run" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand run" -l catch-up -d 'Run every scheduled slot since the last successful execution, oldest first (at most `[cron] max_catch_up`, the newest); prints a `contimg.catch-up/1` summary of the executions'
complete -c contimg -n "__fish_contimg_using_subcommand run" -l detach -d 'Only create the execution and its tasks (print the manifest); leave the work to `contimg worker`. Exit 0 once the execution exists, whatever its status (an existing one may have ended; the manifest says how)'
complete -c contimg -n "__fish_contimg_using_subcommand run" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand run" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand run" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand run" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand worker" -l concurrency -d 'Worker threads in this process' -r
complete -c contimg -n "__fish_contimg_using_subcommand worker" -l lease -d 'Lease length: a task whose worker stops heartbeating this long is retried by another worker' -r
complete -c contimg -n "__fish_contimg_using_subcommand worker" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand worker" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand worker" -l once -d 'Return when no task is claimable now (sleeping retries are left for later) and print a summary'
complete -c contimg -n "__fish_contimg_using_subcommand worker" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand worker" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand worker" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand worker" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand worker" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand status" -l limit -d 'How many executions to list' -r
complete -c contimg -n "__fish_contimg_using_subcommand status" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand status" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand status" -l json -d 'Print JSON even on a terminal'
complete -c contimg -n "__fish_contimg_using_subcommand status" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand status" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand status" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand status" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand retry" -l workers -d 'Worker threads' -r
complete -c contimg -n "__fish_contimg_using_subcommand retry" -l lease -d 'Lease length (see `run`)' -r
complete -c contimg -n "__fish_contimg_using_subcommand retry" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand retry" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand retry" -l detach -d 'Only reset the jobs; leave them to `contimg worker`'
complete -c contimg -n "__fish_contimg_using_subcommand retry" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand retry" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand retry" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand retry" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand retry" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand cancel" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand cancel" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand cancel" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand cancel" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand cancel" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand cancel" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand cancel" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand serve" -l listen -d 'Address and port to listen on (port 0: any free port, printed on stderr)' -r
complete -c contimg -n "__fish_contimg_using_subcommand serve" -l workers -d 'Embedded worker threads working the queue (0: none; run `contimg worker` elsewhere)' -r
complete -c contimg -n "__fish_contimg_using_subcommand serve" -l lease -d 'Lease length of the embedded workers (see `run`)' -r
complete -c contimg -n "__fish_contimg_using_subcommand serve" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand serve" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand serve" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand serve" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand serve" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand serve" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand absurd-task" -l queue -d 'ABSURD queue (created if missing)' -r
complete -c contimg -n "__fish_contimg_using_subcommand absurd-task" -l task -d 'Task name, as the other worker registered it' -r
complete -c contimg -n "__fish_contimg_using_subcommand absurd-task" -l params -d 'The task\'s params, a JSON object' -r
complete -c contimg -n "__fish_contimg_using_subcommand absurd-task" -l database-env -d 'Environment variable holding the postgres:// URL' -r
complete -c contimg -n "__fish_contimg_using_subcommand absurd-task" -l timeout -d 'Give up after this long (e.g. 30m) and cancel the task; without it, wait as long as it takes' -r
complete -c contimg -n "__fish_contimg_using_subcommand absurd-task" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand absurd-task" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand absurd-task" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand absurd-task" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand absurd-task" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand absurd-task" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand absurd-task" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and not __fish_seen_subcommand_from check help" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and not __fish_seen_subcommand_from check help" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and not __fish_seen_subcommand_from check help" -l json -d 'Print JSON even on a terminal'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and not __fish_seen_subcommand_from check help" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and not __fish_seen_subcommand_from check help" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and not __fish_seen_subcommand_from check help" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and not __fish_seen_subcommand_from check help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and not __fish_seen_subcommand_from check help" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and not __fish_seen_subcommand_from check help" -f -a "check" -d 'Validate every pipeline: job types, ids, dependencies and cycles, references, parameters, durations, retry settings and cron schedules. Exit 2 (and each error on stderr, naming the file, pipeline and job) when any is invalid'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and not __fish_seen_subcommand_from check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and __fish_seen_subcommand_from check" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and __fish_seen_subcommand_from check" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and __fish_seen_subcommand_from check" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and __fish_seen_subcommand_from check" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and __fish_seen_subcommand_from check" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate every pipeline: job types, ids, dependencies and cycles, references, parameters, durations, retry settings and cron schedules. Exit 2 (and each error on stderr, naming the file, pipeline and job) when any is invalid'
complete -c contimg -n "__fish_contimg_using_subcommand pipelines; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and not __fish_seen_subcommand_from print install remove help" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand cron; and not __fish_seen_subcommand_from print install remove help" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand cron; and not __fish_seen_subcommand_from print install remove help" -l json -d 'Print JSON (the lines and the block) instead of the block itself'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and not __fish_seen_subcommand_from print install remove help" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and not __fish_seen_subcommand_from print install remove help" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and not __fish_seen_subcommand_from print install remove help" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and not __fish_seen_subcommand_from print install remove help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and not __fish_seen_subcommand_from print install remove help" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and not __fish_seen_subcommand_from print install remove help" -f -a "print" -d 'Print the crontab block (the default)'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and not __fish_seen_subcommand_from print install remove help" -f -a "install" -d 'Add or update this workspace\'s block in the user\'s crontab'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and not __fish_seen_subcommand_from print install remove help" -f -a "remove" -d 'Remove this workspace\'s block from the user\'s crontab'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and not __fish_seen_subcommand_from print install remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from print" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from print" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from print" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from print" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from print" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from print" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from print" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from install" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from install" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from install" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from install" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from install" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from remove" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from remove" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from remove" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from help" -f -a "print" -d 'Print the crontab block (the default)'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from help" -f -a "install" -d 'Add or update this workspace\'s block in the user\'s crontab'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove this workspace\'s block from the user\'s crontab'
complete -c contimg -n "__fish_contimg_using_subcommand cron; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c contimg -n "__fish_contimg_using_subcommand notifications" -l limit -d 'How many to list' -r
complete -c contimg -n "__fish_contimg_using_subcommand notifications" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand notifications" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand notifications" -l json -d 'Print JSON even on a terminal'
complete -c contimg -n "__fish_contimg_using_subcommand notifications" -l deliver -d 'First deliver every pending notification (ignoring the retry back-off)'
complete -c contimg -n "__fish_contimg_using_subcommand notifications" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand notifications" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand notifications" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand notifications" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand notifications" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand completions" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand completions" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand completions" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand completions" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand completions" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand completions" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand man" -l out -d 'Directory to write the pages into; without it, contimg.1 is printed on stdout' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand man" -s C -l workspace -d 'Use the workspace at DIR (it must hold contimg.toml)' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand man" -l db -d 'Use this database instead of the workspace\'s: an SQLite file (no workspace needed) or a postgres:// URL' -r -F
complete -c contimg -n "__fish_contimg_using_subcommand man" -s q -l quiet -d 'Print only errors on stderr'
complete -c contimg -n "__fish_contimg_using_subcommand man" -s v -l verbose -d 'Print more detail on stderr (repeat for more)'
complete -c contimg -n "__fish_contimg_using_subcommand man" -l no-progress -d 'Never draw progress bars (they already hide when stderr is not a terminal)'
complete -c contimg -n "__fish_contimg_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c contimg -n "__fish_contimg_using_subcommand man" -s V -l version -d 'Print version'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "init" -d 'Create a workspace (contimg.toml, database, mosaics/, logs/)'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "simulate" -d 'Write simulated drift-scan snapshots and their truth catalogue'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "ingest" -d 'Register FITS images (centre, time, rms, beam, frequency, hash)'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "images" -d 'List registered images, ordered by observation time'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "tiers" -d 'Show the mosaic tiers in force'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "plan" -d 'Select images for a mosaic and record the plan'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "build" -d 'Build a plan\'s mosaic, weight map and expected-noise map'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "qa" -d 'Quality-check a mosaic and record the verdict'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "run" -d 'Run a pipeline for one slot, or for every missed slot'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "worker" -d 'Claim and run queued tasks (more processes or machines)'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "status" -d 'Show the executions, or one execution\'s jobs'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "retry" -d 'Re-run an execution\'s failed and cancelled jobs'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "cancel" -d 'Cancel an execution'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "serve" -d 'Serve the HTTP API and the status page, with embedded workers.'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "absurd-task" -d 'Run one task on an ABSURD queue and print its result'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "pipelines" -d 'List the pipelines, or validate them with `check`'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "cron" -d 'Schedule the workspace\'s pipelines with the system crontab'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "notifications" -d 'List the failure notifications and their delivery'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "completions" -d 'Print a shell completion script'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "man" -d 'Write the man pages'
complete -c contimg -n "__fish_contimg_using_subcommand help; and not __fish_seen_subcommand_from init simulate ingest images tiers plan build qa run worker status retry cancel serve absurd-task pipelines cron notifications completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c contimg -n "__fish_contimg_using_subcommand help; and __fish_seen_subcommand_from pipelines" -f -a "check" -d 'Validate every pipeline: job types, ids, dependencies and cycles, references, parameters, durations, retry settings and cron schedules. Exit 2 (and each error on stderr, naming the file, pipeline and job) when any is invalid'
complete -c contimg -n "__fish_contimg_using_subcommand help; and __fish_seen_subcommand_from cron" -f -a "print" -d 'Print the crontab block (the default)'
complete -c contimg -n "__fish_contimg_using_subcommand help; and __fish_seen_subcommand_from cron" -f -a "install" -d 'Add or update this workspace\'s block in the user\'s crontab'
complete -c contimg -n "__fish_contimg_using_subcommand help; and __fish_seen_subcommand_from cron" -f -a "remove" -d 'Remove this workspace\'s block from the user\'s crontab'
