"""ray_cluster.yaml is a real cluster-launcher config: Ray's own validator accepts it."""

from __future__ import annotations

from pathlib import Path

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CONFIG = Path(__file__).resolve().parents[2] / "ray_cluster.yaml"


def test_ray_cluster_yaml_passes_rays_validation() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    validate_config(prepare_config(config))
    assert config["provider"]["type"] == "local"
    assert len(config["provider"]["worker_ips"]) >= 1
