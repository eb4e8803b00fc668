"""Every ``llmops.*`` tag key llmops writes into the MLflow registry, in one place.

Tags are how llmops objects are told apart from other MLflow objects and how their lineage is kept.
A key is defined here once and used by name everywhere else; readers and writers cannot drift.
"""

from __future__ import annotations

# -- what kind of llmops object a registered model, version or run is ----------------------------
KIND = "llmops.kind"
KIND_ADAPTER = "adapter"
KIND_BASE_MODEL = "base-model"
KIND_RELEASE = "release"
KIND_EVAL_RECORD = "eval-record"
KIND_FINETUNE = "finetune"
KIND_LEASE = "lease"  # a promotion lease (llmops.registry.lease), never listed
KIND_DATASET = "dataset"  # a stored dataset (llmops.registry.datasets)

# -- content identity ---------------------------------------------------------------------------
SHA256 = "llmops.sha256"  # adapter manifest sha256; base model files sha256; dataset fingerprint (inputs)
SOURCE_PATH = "llmops.path"  # workspace-relative path a prompt version or dataset came from
LOCAL_PATH = "llmops.local_path"  # where a base model was built on the machine that recorded it

# -- prompt versions ----------------------------------------------------------------------------
PROMPT_SPEC = "llmops.spec"  # canonical JSON of the prompt spec
PROMPT_CONTENT_SHA256 = "llmops.content_sha256"
GIT_COMMIT = "llmops.git_commit"
GIT_DIRTY = "llmops.git_dirty"

# -- adapter lineage (every adapter version carries all of them; "" when not applicable) ---------
BASE_MODEL = "llmops.base_model"
BASE_MODEL_SHA256 = "llmops.base_model_sha256"
DATASET_FINGERPRINT = "llmops.dataset_fingerprint"
PROMPT_VERSION = "llmops.prompt_version"
JOB_SPEC_SHA256 = "llmops.job_spec_sha256"
RUN_ID = "llmops.run_id"
INIT_ADAPTER = "llmops.init_adapter"  # NAME/VERSION@SHA256 the adapter continued training from
LINEAGE = (
    BASE_MODEL,
    BASE_MODEL_SHA256,
    DATASET_FINGERPRINT,
    PROMPT_VERSION,
    GIT_COMMIT,
    JOB_SPEC_SHA256,
    RUN_ID,
    INIT_ADAPTER,
)
DEMO_STEPS = "llmops.demo_steps"  # adapter versions the demo trained with fewer steps (tests)

# -- fine-tune runs -----------------------------------------------------------------------------
JOB = "llmops.job"
JOB_FILE = "llmops.job_file"
ADAPTER = "llmops.adapter"  # the adapter name a job registers into
ADAPTER_VERSION = "llmops.adapter_version"  # set on the run once the version is registered
RESUMED_FROM_STEP = "llmops.resumed_from_step"
STOPPED_AT_STEP = "llmops.stopped_at_step"
STOPPED_BY = "llmops.stopped_by"
BATCHING = "llmops.batching"
PRECISION = "llmops.precision"

# -- retraining from production traffic (``llmops retrain``): the retrain run, the candidate adapter
# version it registered and the monitor's trigger run carry these -------------------------------
KIND_RETRAIN = "retrain"
RETRAIN_ROUTE = "llmops.retrain.route"
RETRAIN_RUN = "llmops.retrain.run"  # the retrain run (dataset artifact, source counts)
RETRAIN_TRIGGER = "llmops.retrain.trigger"  # the monitor trigger run that asked for it ("" when run by hand)
RETRAIN_DATASET = "llmops.retrain.dataset_fingerprint"  # fingerprint of the merged training file
RETRAIN_WINDOW = "llmops.retrain.window"  # "SINCE..UNTIL": epoch seconds of the request log read
RETRAIN_COUNTS = "llmops.retrain.counts"  # JSON: rows by source, dropped by reason
RETRAIN_FINETUNE_RUN = "llmops.retrain.finetune_run"
RETRAIN_CANDIDATE = "llmops.retrain.candidate"  # NAME/VERSION of the candidate adapter (never promoted)
RETRAIN_EVAL_RECORDS = "llmops.retrain.eval_records"  # comma-separated eval record ids
RETRAIN_EVAL_VERDICTS = "llmops.retrain.eval_verdicts"  # JSON: suite -> pass/fail

# -- stored datasets (llmops.registry.datasets); the fingerprint is ``llmops.sha256`` -------------
DATASET_NAME = "llmops.dataset.name"
DATASET_KIND = "llmops.dataset.kind"  # training | eval | eval-cases | retrain
DATASET_ROWS = "llmops.dataset.rows"
DATASET_SOURCE = "llmops.dataset.source"  # workspace-relative source path(s), comma-separated
DATASET_VALIDATION = "llmops.dataset.validation"  # JSON: the validation summary (warning counts)
DATASET_FILES = "llmops.dataset.files"  # JSON: [{"name", "sha256", "bytes"}] of the stored files
DATASET_RUN = "llmops.dataset.run"  # on a run's dataset input: the run that stores the files

# -- releases (pointer versions and eval records) ----------------------------------------------
RELEASE = "llmops.release"  # canonical JSON of the release
RELEASE_KEY = "llmops.release.key"
RELEASE_ADAPTER = "llmops.release.adapter"  # readable copies for the MLflow UI and searches
RELEASE_PROMPT = "llmops.release.prompt"
RELEASE_BASE_MODEL = "llmops.release.base_model"
RELEASE_EVAL_RECORDS = "llmops.release.eval_records"

# -- route state on ``ROUTE.release`` (llmops.registry.routestate) ------------------------------
ROUTE_WEIGHTS = "llmops.route.weights"  # JSON {"weights": {target: int}, "version": N, "actor": str, "time": epoch}
ROUTE_ROLLOUT = "llmops.route.rollout"  # id of the rollout that owns the weights; "" or absent: none

# -- leases (llmops.registry.lease) ----------------------------------------------------------
LEASE_HOLDER = "llmops.lease.holder"
LEASE_HOST = "llmops.lease.host"
LEASE_PID = "llmops.lease.pid"
LEASE_TOKEN = "llmops.lease.token"
LEASE_EXPIRES_AT = "llmops.lease.expires_at"  # epoch seconds
LEASE_RELEASED = "llmops.lease.released"

# -- eval records -------------------------------------------------------------------------------
EVAL_SUITE = "llmops.eval.suite"
EVAL_SUITE_SHA256 = "llmops.eval.suite_sha256"
EVAL_VERDICT = "llmops.eval.verdict"

# -- audit records: every field is a tag under this prefix --------------------------------------
AUDIT_PREFIX = "llmops.audit."
