"""The janitor reports which catalogue images the runner finds, by catalogue name, to the API."""

from __future__ import annotations

from executor_service.settings import Settings
from executor_service.worker.janitor import Janitor
from tests.unit.service.conftest import worker_context_for
from tests.unit.service.fake_runner import FakeRunner


def test_the_janitor_reports_each_catalogue_image_present_or_not(
    service_settings: Settings,
) -> None:
    settings = service_settings.model_copy(update={"image_prefix": "janitor-test"})
    runner = FakeRunner()
    context = worker_context_for(settings, runner)
    catalogue = context.planner.catalogue
    assert {"python", "shell"} <= set(catalogue.images)
    # The shell image under this prefix, and one the catalogue does not name; no python image.
    runner.images = frozenset({catalogue.image_ref("janitor-test", "shell"), "janitor-test/x:9"})
    assert context.stores.workers.images_present() == {}

    Janitor(context).report_images()

    reported = context.stores.workers.images_present()
    assert set(reported) == set(catalogue.images)  # only catalogue names, every one of them
    assert reported["shell"] is True
    assert reported["python"] is False
