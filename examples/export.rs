//! Export: every item of a listing to an NDJSON file, with a progress bar, a checkpoint after
//! each page, and `--resume` to continue after an interruption — without losing or duplicating
//! an item.
//!
//! ```text
//! cargo run --example export --features mock -- [--path PATH] [--paging STYLE] [--items-at POINTER]
//!     [--page-size N] [--id FIELD] [--out FILE] [--resume] [--interrupt-after PAGES]
//! ```
//!
//! What to export (the defaults are the Widgets API of the embedded mock):
//!
//! - `--path PATH`: the listing (default `/v1/widgets`), e.g. `/user/repos`.
//! - `--paging STYLE`: how it pages (default `offset:skip,take`): `offset[:SKIP,TAKE]`,
//!   `page[:PAGE,PER_PAGE]` (numbered from 1), `cursor[:PARAM,POINTER[,SIZE]]` (the next cursor
//!   at a JSON pointer in the body), `next[:POINTER[,SIZE]]` (the next page's URL in the body)
//!   or `link[:SIZE]` (the `Link: rel="next"` header). Names left out take the defaults
//!   `skip,take`, `page,per_page`, `cursor,/next_cursor,limit`, `/next,page_size`, `per_page`.
//! - `--items-at POINTER`: where the items are in an envelope body, e.g. `/results` (default:
//!   the body is the array).
//! - `--page-size N`: items per request (default 100). **Keep it at or below the API's
//!   maximum**: an API that caps the page size without announcing a total makes a capped page
//!   look like the last one.
//! - `--id FIELD`: the field that identifies an item (default `id`); the finished file is
//!   checked to hold each value once. Items without it are counted, not checked.
//!
//! How to export it:
//!
//! - `--out FILE`: the NDJSON file (default `export.ndjson`); the checkpoint is written next
//!   to it as `FILE.checkpoint.json`.
//! - `--resume`: continue from the checkpoint instead of starting over. Give the same path,
//!   paging and query as the run that wrote it.
//! - `--interrupt-after PAGES`: simulate a crash after writing that many pages, at the worst
//!   moment: the last page is in the file but not yet in the checkpoint.
//!
//! For example, an API that pages like GitHub's:
//! `--path /user/repos --paging link --page-size 100`; a Django REST Framework API:
//! `--path /api/items/ --paging next --items-at /results`.
//!
//! The checkpoint holds the listing's position ([`authed::pagination::Position`], serde) and
//! the length of the file when it was taken. Resuming cuts the file back to that length and
//! continues from that position, so a crash anywhere — mid-page, between the page and its
//! checkpoint — neither loses nor repeats a line.
//!
//! Environment variables:
//!
//! - `AUTHED_BASE_URL` unset (the default): exports from the embedded mock API, seeded with
//!   1,000 widgets; given another `--path`, the mock serves 1,000 items there in the chosen
//!   paging style (its cursor pages keep the items at `/items`, its next-URL pages at
//!   `/results`). Without `--resume` or `--interrupt-after`, the run demonstrates both: a first
//!   pass crashes after 3 pages, a second one resumes, and the file is checked to hold all
//!   1,000 items, each exactly once.
//! - `AUTHED_BASE_URL` set: exports from that API with `Client::from_env()` (which also reads
//!   `AUTHED_TOKEN_URL`, `AUTHED_REFRESH_TOKEN`, `AUTHED_CLIENT_ID`, `AUTHED_CLIENT_SECRET`,
//!   `AUTHED_SCOPE`).

mod common;

use std::{
    collections::HashSet,
    io::IsTerminal,
    path::{Path, PathBuf},
    pin::pin,
};

use authed::{
    Client,
    mock::MockApi,
    pagination::{Marker, Position},
};
use common::Style;
use futures_util::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::{fs, io::AsyncWriteExt};

type BoxError = Box<dyn std::error::Error>;

const USAGE: &str = "usage: export [--path PATH] [--paging STYLE] [--items-at POINTER] \
                     [--page-size N] [--id FIELD] [--out FILE] [--resume] [--interrupt-after PAGES]";
/// Items seeded in the mock API.
const MOCK_ITEMS: u64 = 1_000;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();

    if std::env::var_os("AUTHED_BASE_URL").is_some() {
        let client = Client::from_env()?;
        println!(
            "Exporting {} from {} (paging {}) to {}",
            args.path,
            client.base_url(),
            args.paging,
            args.out.display()
        );
        return run(&client, &args, args.resume, args.interrupt_after, None).await;
    }

    let api = MockApi::builder().widgets(MOCK_ITEMS).start().await;
    common::serve_listing(&api, &args.path, &args.paging, MOCK_ITEMS).await;
    let client = api.client();
    println!(
        "AUTHED_BASE_URL is not set: exporting {MOCK_ITEMS} items from {} of the embedded mock API (paging {})",
        args.path, args.paging
    );
    let expected = Some(MOCK_ITEMS);
    if args.resume || args.interrupt_after.is_some() {
        return run(&client, &args, args.resume, args.interrupt_after, expected).await;
    }
    println!("\nRun 1, interrupted after 3 pages (as `--interrupt-after 3`):");
    run(&client, &args, false, Some(3), expected).await?;
    println!("\nRun 2, resumed (as `--resume`):");
    run(&client, &args, true, None, expected).await
}

/// One export run: starts over or resumes, and stops early when told to simulate a crash.
/// `expected` is the number of items the listing holds, when the program knows it.
async fn run(
    client: &Client,
    args: &Args,
    resume: bool,
    interrupt_after: Option<u64>,
    expected: Option<u64>,
) -> Result<(), BoxError> {
    let checkpoint_path = checkpoint_path(&args.out);
    let (mut file, mut checkpoint) = if resume {
        let checkpoint = Checkpoint::load(&checkpoint_path).await?;
        let Some(next) = &checkpoint.next else {
            println!("  the checkpoint says the export is complete; nothing to do");
            return verify(&args.out, &args.id, &checkpoint).await;
        };
        let file = fs::OpenOptions::new().append(true).open(&args.out).await?;
        let on_disk = file.metadata().await?.len();
        // Lines written after the checkpoint belong to a page that will be fetched again.
        file.set_len(checkpoint.bytes).await?;
        println!(
            "  checkpoint: {} items ({} bytes; the file had {on_disk}, cut back), next item #{}",
            checkpoint.exported,
            checkpoint.bytes,
            next.index() + 1
        );
        (file, checkpoint)
    } else {
        let checkpoint = Checkpoint {
            next: Some(Position::new(Marker::Start)),
            bytes: 0,
            exported: 0,
        };
        checkpoint.save(&checkpoint_path).await?;
        (fs::File::create(&args.out).await?, checkpoint)
    };

    let start = checkpoint
        .next
        .clone()
        .unwrap_or(Position::new(Marker::Start));
    // Fetch the next page while this one is written.
    let pagination = args
        .paging
        .pagination(args.items_at.as_deref(), args.page_size);
    let list = client
        .paginate::<Value>(&args.path, pagination)
        .prefetch(1)
        .resume_from(start);
    let mut pages = pin!(list.pages());

    let bar = progress_bar(checkpoint.exported);
    let (mut fetched, mut total) = (0, None);
    while let Some(page) = pages.try_next().await? {
        if let Some(n) = page.total() {
            bar.set_length(n);
            total = Some(n);
        }
        let mut lines = Vec::new();
        for item in page.items() {
            serde_json::to_writer(&mut lines, item)?;
            lines.push(b'\n');
        }
        file.write_all(&lines).await?;
        file.sync_data().await?;
        fetched += 1;
        if interrupt_after == Some(fetched) {
            bar.abandon();
            println!(
                "  simulated crash after page {fetched}: its {} items are in the file, not in the checkpoint",
                page.items().len()
            );
            return Ok(());
        }
        checkpoint = Checkpoint {
            next: page.next().cloned(),
            bytes: checkpoint.bytes + lines.len() as u64,
            exported: checkpoint.exported + page.items().len() as u64,
        };
        checkpoint.save(&checkpoint_path).await?;
        bar.inc(page.items().len() as u64);
    }
    bar.finish_and_clear();
    // The last page has no next position; an empty listing yields no page at all.
    checkpoint.next = None;
    checkpoint.save(&checkpoint_path).await?;
    println!(
        "  exported {} items to {}",
        checkpoint.exported,
        args.out.display()
    );
    if let Some(total) = total.filter(|t| *t != checkpoint.exported) {
        let msg = format!(
            "the API announced {total} items but {} were exported",
            checkpoint.exported
        );
        return Err(msg.into());
    }
    if let Some(expected) = expected.filter(|n| *n != checkpoint.exported) {
        let msg = format!(
            "the listing holds {expected} items but {} were exported",
            checkpoint.exported
        );
        return Err(msg.into());
    }
    verify(&args.out, &args.id, &checkpoint).await
}

/// Checks the file: one JSON item per line, as many as checkpointed, each `id` value once.
async fn verify(out: &Path, id: &str, checkpoint: &Checkpoint) -> Result<(), BoxError> {
    let text = fs::read_to_string(out).await?;
    let (mut lines, mut ids) = (0, HashSet::new());
    for (n, line) in text.lines().enumerate() {
        let item: Value = serde_json::from_str(line)
            .map_err(|e| format!("{}:{}: not JSON: {e}", out.display(), n + 1))?;
        lines += 1;
        if let Some(value) = item.get(id)
            && !ids.insert(value.to_string())
        {
            let msg = format!("{id} {value} appears twice in {}", out.display());
            return Err(msg.into());
        }
    }
    if lines != checkpoint.exported {
        let msg = format!(
            "{} holds {lines} items, expected {}",
            out.display(),
            checkpoint.exported
        );
        return Err(msg.into());
    }
    println!(
        "  verified: {lines} lines, {} distinct values of {id:?}, no duplicates",
        ids.len()
    );
    Ok(())
}

fn progress_bar(done: u64) -> ProgressBar {
    if !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0).with_position(done);
    if let Ok(style) =
        ProgressStyle::with_template("  {bar:40} {pos}/{len} items ({per_sec}, {eta} left)")
    {
        bar.set_style(style);
    }
    bar
}

// ===== Checkpoint =====

/// What survives a crash: where the listing continues and how much of the file is good.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    /// The position to resume from (the start of the listing before the first page); `None`
    /// once the export is complete.
    next: Option<Position>,
    /// The file's length when the checkpoint was taken.
    bytes: u64,
    /// Items in the file up to `bytes`.
    exported: u64,
}

impl Checkpoint {
    async fn load(path: &Path) -> Result<Self, BoxError> {
        let bytes = fs::read(path).await.map_err(|e| {
            format!(
                "cannot read the checkpoint {} ({e}); run without --resume to start over",
                path.display()
            )
        })?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Writes to a temporary file and renames it over the old one, so that a crash leaves
    /// either the old checkpoint or the new one, never half of one.
    async fn save(&self, path: &Path) -> Result<(), BoxError> {
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(self)?).await?;
        fs::rename(&tmp, path).await?;
        Ok(())
    }
}

fn checkpoint_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".checkpoint.json");
    PathBuf::from(name)
}

// ===== Args =====

struct Args {
    path: String,
    paging: Style,
    items_at: Option<String>,
    page_size: u64,
    id: String,
    out: PathBuf,
    resume: bool,
    interrupt_after: Option<u64>,
}

impl Args {
    /// The command line; prints the usage and exits on `--help` or a mistake.
    fn parse() -> Self {
        Self::try_parse().unwrap_or_else(|mistake| {
            eprintln!("{mistake}\n{USAGE}\n  STYLE: {}", common::PAGING_SYNTAX);
            std::process::exit(2);
        })
    }

    fn try_parse() -> Result<Self, String> {
        let mut args = Self {
            path: common::WIDGETS_PATH.into(),
            paging: Style::default(),
            items_at: None,
            page_size: 100,
            id: "id".into(),
            out: PathBuf::from("export.ndjson"),
            resume: false,
            interrupt_after: None,
        };
        let mut argv = std::env::args().skip(1);
        while let Some(arg) = argv.next() {
            let mut value = |name: &str| argv.next().ok_or(format!("{name} needs a value"));
            let number = |v: String| {
                v.parse::<u64>()
                    .map_err(|_| format!("{arg} needs a number, not {v:?}"))
            };
            match arg.as_str() {
                "--path" => args.path = value(&arg)?,
                "--paging" => args.paging = value(&arg)?.parse()?,
                "--items-at" => args.items_at = Some(value(&arg)?),
                "--id" => args.id = value(&arg)?,
                "--out" => args.out = value("--out")?.into(),
                "--resume" => args.resume = true,
                "--interrupt-after" => args.interrupt_after = Some(number(value(&arg)?)?),
                "--page-size" => args.page_size = number(value(&arg)?)?,
                "-h" | "--help" => {
                    println!("{USAGE}\n  STYLE: {}", common::PAGING_SYNTAX);
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(args)
    }
}
