//! `deckhand`: deploy, roll back, watch, status and history of deckhand deployments from a
//! terminal. Thin: arguments here, each command in its own module, the AWS work through the same
//! core crate and SDK the functions use.

mod approve;
mod cloud;
mod doctor;
mod follow;
mod history;
mod hook;
mod output;
mod report;
mod schedule;
mod start;
mod status;
mod steps;
mod track;
mod verdict;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use deckhand_core::app::approval::Decision;
use output::Exit;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "deckhand",
    version,
    about = "Push-to-deploy for Amazon ECS: deploy, roll back and follow deployments"
)]
struct Cli {
    /// The CloudFormation stack deckhand was deployed as (its outputs name the state machine
    /// and the state table).
    #[arg(long, global = true, env = "DECKHAND_STACK", default_value = "deckhand")]
    stack: String,
    /// AWS Region (default: from the environment or profile).
    #[arg(long, global = true)]
    region: Option<String>,
    /// Named profile from the AWS config files.
    #[arg(long, global = true)]
    profile: Option<String>,
    /// text for people (progress on a terminal, plain lines otherwise), json for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Deploy IMAGE (REPOSITORY:TAG or REPOSITORY@sha256:…) to a service and follow it.
    Deploy {
        cluster: String,
        service: String,
        image: String,
        /// The tracked container to deploy into (needed when several track the image's repository).
        #[arg(long)]
        container: Option<String>,
        /// Show the task-definition diff; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Start a new deployment even if the service already runs this image.
        #[arg(long)]
        force_new_deployment: bool,
        /// Start the deployment and return; follow it later with `deckhand watch`.
        #[arg(long)]
        no_wait: bool,
    },
    /// Roll a service back to its last known-good revision and follow it.
    Rollback {
        cluster: String,
        service: String,
        /// Name the revision a rollback would go to; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        no_wait: bool,
    },
    /// Follow an execution (an ARN of the deploy or service state machine); without one, every
    /// running execution.
    Watch { execution: Option<String> },
    /// Every tracked service: what it tracks and runs, its known-good revision, lock and execution.
    Status { cluster: Option<String>, service: Option<String> },
    /// A service's past deployments, newest first.
    History {
        cluster: String,
        service: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Opt a service in: set its deckhand:track tag (and policy tags), validated as deckhand does.
    Track {
        cluster: String,
        service: String,
        /// CONTAINER=REPOSITORY:RULE, one or more; RULE is a tag, prefix:P or semver:X-RANGE.
        #[arg(required = true, value_name = "CONTAINER=REPO:RULE")]
        items: Vec<String>,
        /// deckhand:timeout, seconds a rollout may take on top of the grace period.
        #[arg(long)]
        timeout: Option<u64>,
        /// deckhand:bake, seconds a healthy rollout is watched again.
        #[arg(long)]
        bake: Option<u64>,
        /// deckhand:max-failed-tasks.
        #[arg(long)]
        max_failed_tasks: Option<u64>,
        /// deckhand:alarms: a CloudWatch alarm whose ALARM fails the rollout and bake (repeatable).
        #[arg(long = "alarm", value_name = "ALARM")]
        alarms: Vec<String>,
        /// deckhand:approval=required: pushes wait for `deckhand approve`.
        #[arg(long)]
        require_approval: bool,
        /// deckhand:approval-timeout, seconds a push waits for its approval (default a day).
        #[arg(long)]
        approval_timeout: Option<u64>,
        /// ECS-native BLUE_GREEN, LINEAR or CANARY: set deckhand's lifecycle hook on the
        /// service, so the gates (target health, alarms, failed tasks) and the bake run inside
        /// ECS's traffic shift (without it, track removes deckhand's hook).
        #[arg(long)]
        hook: bool,
    },
    /// Approve the push waiting for approval on a service (deckhand:approval=required).
    Approve {
        cluster: String,
        service: String,
        /// Why, for the record.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Reject the push waiting for approval on a service: it ends SKIPPED, nothing changes.
    Reject {
        cluster: String,
        service: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Opt a service out: remove its deckhand:track tag (deckhand never modifies it again).
    Untrack { cluster: String, service: String },
    /// Draw pushes as a timeline in one self-contained HTML or SVG file.
    ///
    /// One row per service: its phases (plan, approval and lock waits, rollout with its task and
    /// target counts, bake, rollback) on a time axis, its outcome and reason; the push's verdict;
    /// on a push of more than 12 services, a summary strip (counts by outcome, the slowest).
    #[command(group = clap::ArgGroup::new("file").required(true).multiple(true).args(["html", "svg"]))]
    Report {
        /// Executions of the deploy state machine, by ARN or name (or of a service's state
        /// machine, by ARN); with --from-history, the file's (default: every push in it).
        #[arg(required_unless_present = "from_history")]
        executions: Vec<String>,
        /// Write the report as an HTML page here.
        #[arg(long, value_name = "FILE")]
        html: Option<std::path::PathBuf>,
        /// Write the report as an SVG picture here.
        #[arg(long, value_name = "FILE")]
        svg: Option<std::path::PathBuf>,
        /// Read the histories from FILE ({"executions": [{"executionArn", "events"}]}, events as
        /// GetExecutionHistory returns them) instead of Step Functions.
        #[arg(long, value_name = "FILE")]
        from_history: Option<std::path::PathBuf>,
    },
    /// Why a service would or would not deploy well, one line per check.
    Doctor { cluster: String, service: String },
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "deckhand", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return output::fail(Exit::Failed, &format!("cannot start: {error}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(exit) => exit.into(),
        Err(error) => output::fail(error.exit(), &error.to_string()),
    }
}

async fn run(cli: Cli) -> Result<Exit, output::Error> {
    let cloud = cloud::Cloud::connect(cli.region, cli.profile, cli.stack).await;
    let format = cli.output;
    match cli.command {
        Command::Deploy { cluster, service, image, container, dry_run, force_new_deployment, no_wait } => {
            let request = start::Request::Deploy { image, container, force_new_deployment };
            start::run(&cloud, format, start::Start { cluster, service, request, dry_run, no_wait }).await
        }
        Command::Rollback { cluster, service, dry_run, no_wait } => {
            let request = start::Request::Rollback;
            start::run(&cloud, format, start::Start { cluster, service, request, dry_run, no_wait }).await
        }
        Command::Watch { execution } => follow::watch(&cloud, format, execution).await,
        Command::Status { cluster, service } => status::run(&cloud, format, cluster, service).await,
        Command::History { cluster, service, limit } => history::run(&cloud, format, &cluster, &service, limit).await,
        Command::Track {
            cluster,
            service,
            items,
            timeout,
            bake,
            max_failed_tasks,
            alarms,
            require_approval,
            approval_timeout,
            hook,
        } => {
            let policy = track::PolicyTags {
                timeout,
                bake,
                max_failed_tasks,
                alarms,
                approval: require_approval,
                approval_timeout,
                hook,
            };
            track::track(&cloud, format, &cluster, &service, &items, &policy).await
        }
        Command::Approve { cluster, service, reason } => {
            approve::run(&cloud, format, &cluster, &service, Decision::Approve, &reason).await
        }
        Command::Reject { cluster, service, reason } => {
            approve::run(&cloud, format, &cluster, &service, Decision::Reject, &reason).await
        }
        Command::Untrack { cluster, service } => track::untrack(&cloud, format, &cluster, &service).await,
        Command::Report { executions, html, svg, from_history } => {
            report::run(&cloud, format, report::Request { executions, html, svg, from_history }).await
        }
        Command::Doctor { cluster, service } => doctor::run(&cloud, format, &cluster, &service).await,
        Command::Completions { .. } => unreachable!("handled before the runtime starts"),
    }
}
