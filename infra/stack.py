"""Wire the components together on a platform (called by ``__main__``)."""

from __future__ import annotations

import pulumi

from components.experiment_tracking import ExperimentTracking, ExperimentTrackingArgs
from components.feature_store import FeatureStore, FeatureStoreArgs
from components.governance import Governance, GovernanceArgs
from components.images import Images, ImagesArgs
from components.model_serving import ModelServing, ModelServingArgs, Variant
from components.monitoring import Monitoring, MonitoringArgs, pushgateway_url
from components.training_pipeline import TrainingPipeline, TrainingPipelineArgs
from components.types import Services
from infra.config import StackConfig
from infra.platforms import Platform


def compose(cfg: StackConfig, platform: Platform) -> dict[str, pulumi.Input[object]]:
    """Create every component on ``platform``; returns the stack outputs."""
    opts = pulumi.ResourceOptions(providers={"kubernetes": platform.provider})
    cluster, backends = platform.cluster, platform.backends
    images = Images("images", ImagesArgs(ml=cfg.ml_image, serving=cfg.serving_image))
    tracking = ExperimentTracking(
        "mlflow",
        ExperimentTrackingArgs(cluster, backends, images.ml, ingress_host=cfg.ingress_host),
        opts,
    )
    features = FeatureStore(
        "feast",
        FeatureStoreArgs(
            cluster,
            backends,
            images.ml,
            pushgateway_url=pushgateway_url(cluster.monitoring_namespace),
            materialize_schedule=cfg.materialize_schedule,
        ),
        opts,
    )
    services = Services(
        tracking_uri=tracking.tracking_uri,
        mlflow_credentials=tracking.workload_credentials,
        feast_config_secret=features.config_secret,
        pushgateway_url=pushgateway_url(cluster.monitoring_namespace),
        ready=(tracking.users_job,),
    )
    variants = [
        Variant(name, weight, shadow=name in cfg.shadow_variants)
        for name, weight in cfg.variant_weights()
    ]
    serving = ModelServing(
        "serving",
        ModelServingArgs(
            cluster,
            images.serving,
            variants,
            backends,
            services,
            canary_steps=cfg.canary_steps,
            min_replicas=cfg.serving_replicas,
            max_replicas=cfg.serving_max_replicas,
        ),
        opts,
    )
    TrainingPipeline(
        "pipeline",
        TrainingPipelineArgs(
            cluster,
            backends,
            services,
            images.ml,
            schedule=cfg.retrain_schedule,
        ),
        opts,
    )
    Monitoring(
        "monitoring",
        MonitoringArgs(
            cluster,
            backends,
            services,
            images.ml,
            scrape_targets=[tracking.scrape_target, features.scrape_target, serving.scrape_target],
            drift_schedule=cfg.drift_schedule,
            retention_days=cfg.retention_days,
        ),
        opts,
    )
    Governance("governance", GovernanceArgs(cluster, backends, services, images.ml), opts)
    return {
        "namespace": cluster.namespace,
        "mlflowUrl": tracking.tracking_uri,
        "featureServerUrl": features.server_url,
        "servingUrl": serving.url,
        "images": {"ml": images.ml, "serving": images.serving},
    }
