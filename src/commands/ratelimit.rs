//! `dpx ratelimit`: the Docker Hub pull quota left, read from the headers of a
//! manifest HEAD, which Docker Hub does not count as a pull.

use std::process::ExitCode;

use anyhow::Context as _;

use super::Context;
use super::quota_report::{HoldReport, RateLimitReport};
use crate::cli::RatelimitArgs;
use crate::fetch::quota::ANONYMOUS;
use crate::reference::DOCKER_HUB;
use crate::registry::DEFAULT_RETRIES;
use crate::registry::probe::{PREVIEW_REPO, PREVIEW_TAG};

pub async fn run(ctx: &Context, args: RatelimitArgs) -> anyhow::Result<ExitCode> {
    let client = ctx.registry_client(DEFAULT_RETRIES, args.anonymous)?;
    let endpoint = client.endpoint(DOCKER_HUB);
    let probe = client
        .probe_quota(DOCKER_HUB, PREVIEW_REPO, PREVIEW_TAG)
        .await
        .with_context(|| {
            format!(
                "cannot check the pull quota of {DOCKER_HUB} at {endpoint}: check the network, \
                 or the [registries.\"{DOCKER_HUB}\"] url in the config file"
            )
        })?;
    let mut report = RateLimitReport::from_probe(DOCKER_HUB, &probe);
    report.endpoint = Some(endpoint);
    report.account = Some(
        client
            .account(DOCKER_HUB)
            .unwrap_or_else(|| ANONYMOUS.to_string()),
    );
    record(ctx, &mut report).await;
    report.print(ctx.output)?;
    report.verdict(args.min_remaining, ctx.output)
}

/// Records the figures of a live check in the cache, as any reply's are: quota
/// shown there lifts a hold for every dpx process. Notes the hold that still
/// applies, if any. Best effort: the check is the answer.
async fn record(ctx: &Context, report: &mut RateLimitReport) {
    let Some(seen) = report.to_seen() else {
        return;
    };
    let (registry, account) = (seen.registry.clone(), seen.account.clone());
    let recorded = match ctx.open_cache() {
        Ok(cache) => tokio::task::spawn_blocking(move || cache.merge_quota_seen(vec![seen])).await,
        Err(e) => {
            tracing::debug!("the quota figures are not recorded: {e:#}");
            return;
        }
    };
    match recorded {
        Ok(Ok(figures)) => {
            report.hold = crate::cache::held(&figures, &registry, &account)
                .and_then(|i| figures.get(i))
                .and_then(|s| s.hold)
                .map(HoldReport::from);
        }
        Ok(Err(e)) => tracing::debug!("the quota figures are not recorded: {e}"),
        Err(e) => tracing::debug!("the quota figures are not recorded: {e}"),
    }
}
