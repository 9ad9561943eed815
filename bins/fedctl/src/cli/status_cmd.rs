//! `fedctl status`.

use super::Output;
use crate::hub::{self, HubOptions};
use crate::status_view::{network_text, summary_text};
use crate::watch::{Scope, Update, View, watch};
use anyhow::Result;
use std::io::IsTerminal as _;

/// What `fedctl status` was asked.
pub struct Args {
    pub network: Option<String>,
    pub namespace: Option<String>,
    pub all_namespaces: bool,
    pub output: Output,
    pub watch: bool,
    pub colour: bool,
}

pub fn run(hub: &HubOptions, args: Args) -> Result<()> {
    super::runtime()?.block_on(async {
        let (client, default_ns) = hub::connect(hub).await?;
        let ns = args.namespace.clone().unwrap_or(default_ns);
        let scope = match (&args.network, args.all_namespaces) {
            (Some(name), _) => Scope::Network {
                namespace: ns,
                name: name.clone(),
            },
            (None, true) => Scope::Networks(None),
            (None, false) => Scope::Networks(Some(ns)),
        };
        // One read first, also when watching: a wrong name fails at once, listing the networks
        // that exist, instead of waiting for a network that may never come.
        let view = match &scope {
            Scope::Network { namespace, name } => View::Network(Box::new(
                hub::network_report(&client, namespace, name).await?,
            )),
            Scope::Networks(ns) => View::Summary(hub::summaries(&client, ns.as_deref()).await?),
        };
        let first = format_view(&view, &args)?;
        if !args.watch {
            return write_stdout(first).await.map(drop);
        }
        let redraw = std::io::stdout().is_terminal();
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let watcher = tokio::spawn(watch(client, scope, tx));
        let mut last: Option<String> = None;
        let mut frames = 0usize;
        if !show(&first, redraw, &args, &mut frames).await? {
            return Ok(());
        }
        last.get_or_insert(first);
        while let Some(update) = rx.recv().await {
            match update {
                Update::View(view) => {
                    let text = format_view(&view, &args)?;
                    // The first watched view repeats the read above; only changes print.
                    if last.as_deref() != Some(text.as_str()) {
                        if !show(&text, redraw, &args, &mut frames).await? {
                            break;
                        }
                        last = Some(text);
                    }
                }
                Update::Trouble(message) => eprintln!("warning: {message} (retrying)"),
            }
        }
        watcher.abort();
        Ok(())
    })
}

/// Prints one state: on a terminal the screen is cleared first; elsewhere states follow each
/// other, separated so that tools can split them (`---` between text or YAML documents, one
/// JSON document per line). Returns `false` when stdout's reader has gone.
async fn show(text: &str, redraw: bool, args: &Args, frames: &mut usize) -> Result<bool> {
    let mut buf = String::new();
    if redraw {
        buf.push_str("\x1b[2J\x1b[H");
    } else if *frames > 0 && args.output != Output::Json {
        buf.push_str("---\n");
    }
    buf.push_str(text);
    *frames += 1;
    write_stdout(buf).await
}

/// Writes to stdout off the runtime's thread: a slow pipe or terminal must not stall the
/// watches. `false` when the reader has gone.
async fn write_stdout(text: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || super::emit(&text)).await?
}

fn format_view(view: &View, args: &Args) -> Result<String> {
    let watching_json = args.watch && args.output == Output::Json;
    let json = |v: serde_json::Value| -> Result<String> {
        Ok(if watching_json {
            format!("{}\n", serde_json::to_string(&v)?)
        } else {
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        })
    };
    Ok(match (view, args.output) {
        (View::Network(r), Output::Text) => network_text(r, args.colour),
        (View::Network(r), Output::Json) => json(serde_json::to_value(r)?)?,
        (View::Network(r), Output::Yaml) => serde_yaml::to_string(r)?,
        (View::Summary(rows), Output::Text) if rows.is_empty() => {
            let where_ = match &args.namespace {
                _ if args.all_namespaces => "on this hub".to_owned(),
                Some(ns) => format!("in namespace {ns}"),
                None => "in the context's namespace (try -n NAMESPACE or -A)".to_owned(),
            };
            format!("no FederatedNetwork {where_}\n")
        }
        (View::Summary(rows), Output::Text) => summary_text(rows, args.all_namespaces, args.colour),
        (View::Summary(rows), Output::Json) => json(serde_json::to_value(rows)?)?,
        (View::Summary(rows), Output::Yaml) => serde_yaml::to_string(rows)?,
        (View::Gone { namespace, name }, Output::Text) => {
            format!("network {namespace}/{name} does not exist (any more); watching for it\n")
        }
        (View::Gone { namespace, name }, Output::Json) => {
            json(serde_json::json!({"namespace": namespace, "name": name, "deleted": true}))?
        }
        (View::Gone { namespace, name }, Output::Yaml) => serde_yaml::to_string(
            &serde_json::json!({"namespace": namespace, "name": name, "deleted": true}),
        )?,
    })
}
