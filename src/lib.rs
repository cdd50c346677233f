//! contimg: plan, build, quality-check and record radio continuum mosaics.
//!
//! Every step is a library function; the subcommands under [`cli`] parse arguments, check them and
//! call these functions, and the pipeline runner calls the same functions from queued tasks.
//!
//! # The house (folders are the architecture; arrows point down only)
//!
//! ```text
//!   cli/                 one file per subcommand: arguments -> checked parameters -> a call below
//!    |
//!   workspace/           finding a workspace, contimg.toml (gathers each layer's own settings)
//!    |            \
//!   pipeline/          mosaic/            two siblings that never import each other:
//!   def validate       ingest tiers       pipeline = definitions, validation, schedule, executions,
//!   subst jobs exec    plan build qa         runner, worker, notifications, cron (jobs run the
//!   runner worker      sim beam              mosaic steps as child processes, not as imports)
//!   notify cron        engine/ (pixels)   mosaic   = the steps and the pixel engine
//!    |        \        /     |
//!   queue/    store/           |         queue: ABSURD semantics, knows no job type;
//!    |                         |         store: the database and all its migrations, no CLI
//!   fits/  wcs/  <-------------+         pixels and coordinates, no database
//!    |
//!   time  stats  fsutil  manifest  pg    small shared modules, import nothing above (pg: connecting
//!                                        to PostgreSQL, for the store and the queue)
//! ```
//!
//! The rules, checked by `tests/layering.rs` on every path into the crate in `src/` (parsed, `use`
//! trees, `super::` and re-exports resolved):
//! * a module imports only from its own room or from rooms in a lower layer;
//! * `pipeline` and `mosaic` never import each other; `queue` and `store` never import each other
//!   (the store applies every migration, the queue's tables included, as plain SQL files from
//!   `migrations/`, not through the queue's code);
//! * `cli` never imports `queue` or `store` directly: it reaches them through `workspace` and
//!   `pipeline`;
//! * the pixel engine (`mosaic::engine`) never touches `store` or `queue`;
//! * nothing outside `cli` names `cli`, and `main.rs` only calls [`cli::main`];
//! * no two files import each other, directly or around a circle (a module's own use of its
//!   sub-modules, which it declares, does not count).

pub mod cli;
pub mod fits;
pub mod fsutil;
pub mod manifest;
pub mod mosaic;
pub mod pg;
pub mod pipeline;
pub mod queue;
pub mod serve;
pub mod stats;
pub mod store;
pub mod time;
pub mod wcs;
pub mod workspace;
