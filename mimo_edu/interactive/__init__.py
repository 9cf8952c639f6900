"""Interactive prompting: a cached `Predictor`, the widget `App` and its programmatic twin, the `ask` CLI.

    predictor = Predictor.from_pretrained()        # data/mimo-nano, or $MIMO_EDU_CHECKPOINT
    app = App(predictor); app                      # box, point and scribble tools in JupyterLab
    app.set_box(30, 40, 90, 100); app.ask("What is this?")
"""

from mimo_edu.interactive.app import App, describe
from mimo_edu.interactive.canvas import PromptCanvas
from mimo_edu.interactive.images import gallery, read_upload, synth_image
from mimo_edu.interactive.predictor import Predictor
from mimo_edu.interactive.render import answer_html
from mimo_edu.interactive.tour import MIN_DICE, TOUR_QUESTION, TourStop, run_tour, tour_line
from mimo_edu.shipped import course_checkpoint

__all__ = [
    "MIN_DICE", "TOUR_QUESTION", "App", "Predictor", "PromptCanvas", "TourStop", "answer_html", "course_checkpoint",
    "describe", "gallery", "read_upload", "run_tour", "synth_image", "tour_line",
]
