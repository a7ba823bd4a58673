"""Tests for the metadata detector: real files from ../shared/data and files built here."""

from __future__ import annotations

import csv
import datetime
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from audit.detectors.base import NEEDS_BYTES, NEEDS_PIXELS, NO_EVIDENCE, NOT_APPLICABLE, SYNTHETIC
from audit.detectors.metadata import MetadataDetector, c2pa_evidence, read_stealth_payload, xmp_ai_source_type
from audit.sources import ImageRecord

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IFD_EXIF = 0x8769
USER_COMMENT = 0x9286
A1111_TEXT = (
    "a cat in a hat\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, "
    "Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, ControlNet Model: x"
)
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


def detect_one(data: bytes):
    return MetadataDetector().detect([ImageRecord(id="img", uri="mem:img", data=data)])[0]


def encode(fmt: str, mode: str = "RGB", size=(64, 48), **save) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (120, 80, 40, 255)[: len(mode)]).save(buf, fmt, **save)
    return buf.getvalue()


def png_with_text(**chunks: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    return encode("PNG", pnginfo=info)


def assert_flagged(signal, tool: str, *evidence: str):
    assert (signal.decision, signal.score, signal.tool) == (SYNTHETIC, 1.0, tool), signal
    for part in evidence:
        assert part in signal.evidence, signal.evidence


def assert_real(signal):
    assert (signal.decision, signal.score, signal.generator) == (NO_EVIDENCE, None, None), signal
    assert signal.evidence == "no generator metadata"


def test_detector_contract():
    detector = MetadataDetector()
    assert detector.name == "metadata"
    assert detector.needs == frozenset({NEEDS_BYTES, NEEDS_PIXELS})
    assert detector.hard_evidence is True
    signals = detector.detect(
        [
            ImageRecord(id="bad", uri="mem:bad", data=b"not an image"),
            ImageRecord(id="ok", uri="mem:ok", data=encode("PNG")),
        ]
    )
    assert (signals[0].decision, signals[0].score, signals[0].evidence) == (NOT_APPLICABLE, None, "decode failed")
    assert_real(signals[1])


# --- real data ---------------------------------------------------------------------------


def rows(folder: str) -> list[dict]:
    manifest = DATA / folder / "manifest.csv"
    if not manifest.exists():
        pytest.skip(f"test data not found: {manifest} (../shared/data is absent in a plain clone)")
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def detect_files(paths: list[Path]):
    records = [ImageRecord(id=p.name, uri=str(p), path=str(p)) for p in paths]
    return MetadataDetector().detect(records)


def test_real_ai_metadata_images_are_flagged_with_their_generator():
    manifest = rows("ai-metadata")
    signals = detect_files([DATA / "ai-metadata" / r["filename"] for r in manifest])
    assert len(signals) == 33
    for row, signal in zip(manifest, signals):
        expected = row["generator_from_metadata"]
        if expected.startswith("ComfyUI"):
            assert_flagged(signal, "ComfyUI", "png:prompt+workflow", expected.split("; ")[1])
        else:
            assert expected.startswith("A1111")
            model_hash = expected.split("model_hash=")[1].split(";")[0]
            assert_flagged(signal, "AUTOMATIC1111", "png:parameters", f"model_hash={model_hash}")


def test_real_photos_are_not_flagged():
    kodak = sorted((DATA / "real-kodak").glob("*.png")) if (DATA / "real-kodak").is_dir() else []
    real_rows = [r for r in rows("real-vs-derived") if r["label"] == "real"]
    assert len(kodak) == 24
    assert any("OLYMPUS" in r["exif_summary"] for r in real_rows)  # a camera JPEG with EXIF
    for signal in detect_files(kodak + [DATA / "real-vs-derived" / r["filename"] for r in real_rows]):
        assert_real(signal)


# --- PNG text chunks ---------------------------------------------------------------------

COMFY_PROMPT = json.dumps(
    {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "12": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors", "weight_dtype": "default"}},
        "10": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "ComfyUI"}},
    }
)
COMFY_WORKFLOW = json.dumps({"last_node_id": 9, "nodes": [{"id": 9, "type": "SaveImage"}], "links": []})


def test_a1111_parameters():
    assert_flagged(
        detect_one(png_with_text(parameters=A1111_TEXT)),
        "AUTOMATIC1111",
        "png:parameters (AUTOMATIC1111, model_hash=6ce0161689, model=v1-5-pruned-emaonly)",
    )


def test_comfyui_prompt_and_workflow():
    signal = detect_one(png_with_text(prompt=COMFY_PROMPT, workflow=COMFY_WORKFLOW))
    assert_flagged(signal, "ComfyUI")
    assert signal.evidence == "png:prompt+workflow (ComfyUI, models=flux1-dev.safetensors+sd_xl_base_1.0.safetensors)"


def test_comfyui_workflow_only():
    assert_flagged(detect_one(png_with_text(workflow=COMFY_WORKFLOW)), "ComfyUI", "png:workflow (ComfyUI)")


@pytest.mark.parametrize(
    "chunks, evidence",
    [
        (
            {
                "invokeai_metadata": json.dumps({"model": {"name": "juggernaut-xl", "base": "sdxl"}, "steps": 30}),
                "invokeai_graph": json.dumps({"id": "g", "nodes": {}}),
            },
            "png:invokeai_metadata+invokeai_graph (InvokeAI, model=juggernaut-xl)",
        ),
        ({"invokeai_workflow": json.dumps({"name": "wf", "nodes": []})}, "png:invokeai_workflow (InvokeAI)"),
        (
            {"sd-metadata": json.dumps({"model": "stable diffusion", "app_id": "invoke-ai/InvokeAI"})},
            "png:sd-metadata (InvokeAI)",
        ),
        ({"Dream": '"a red fox" -s 50 -S 1234 -W 512 -H 512 -C 7.5 -A k_lms'}, "png:Dream (InvokeAI)"),
    ],
)
def test_invokeai(chunks, evidence):
    assert_flagged(detect_one(png_with_text(**chunks)), "InvokeAI", evidence)


def test_novelai_png_chunks():
    comment = json.dumps({"prompt": "1girl", "steps": 28, "sampler": "k_euler", "scale": 5})
    data = png_with_text(Software="NovelAI", Source="NovelAI Diffusion V3 7BCCAA2C", Comment=comment)
    assert_flagged(detect_one(data), "NovelAI", "png:Software+Comment (NovelAI, source=NovelAI Diffusion V3 7BCCAA2C)")


def test_fooocus_png_wins_over_its_parameters_chunk():
    data = png_with_text(parameters=json.dumps({"Prompt": "a cat", "Steps": 30}), fooocus_scheme="fooocus")
    assert_flagged(detect_one(data), "Fooocus", "png:fooocus_scheme (Fooocus, scheme=fooocus)")


@pytest.mark.parametrize(
    "chunks",
    [
        {"prompt": "a photo of a cat, not JSON {"},
        {"prompt": json.dumps({"a": 1}), "workflow": json.dumps([1, 2])},
        {"workflow": "{" * 100_000},
        {"parameters": "just a caption without generation settings"},
        {"invokeai_metadata": "garbage", "sd-metadata": "[]"},
        {"Dream": "a dream I had"},
        {"Software": "NovelAI", "Comment": "not json"},
        {"Software": "GIMP 2.10", "Comment": json.dumps({"note": "edited"})},
        {"fooocus_scheme": "   "},
    ],
)
def test_malformed_or_unrelated_chunks_are_no_evidence(chunks):
    assert_real(detect_one(png_with_text(**chunks)))


# --- NovelAI stealth alpha -----------------------------------------------------------------


def stealth_alpha(message: bytes, width: int, height: int) -> np.ndarray:
    """A varied HxW alpha channel whose LSBs, read column-major, start with `message`."""
    bits = np.unpackbits(np.frombuffer(message, dtype=np.uint8))
    column_major = np.random.default_rng(0).integers(200, 256, size=width * height, dtype=np.uint8)
    assert bits.size <= column_major.size
    column_major[: bits.size] = (column_major[: bits.size] & 0xFE) | bits
    return column_major.reshape(width, height).T.copy()


def stealth_png(text: str, compressed: bool, size=(40, 30)) -> bytes:
    """An RGBA PNG carrying a NovelAI stealth payload in its alpha channel."""
    payload = gzip.compress(text.encode()) if compressed else text.encode()
    magic = b"stealth_pngcomp" if compressed else b"stealth_pnginfo"
    width, height = size
    alpha = stealth_alpha(magic + (len(payload) * 8).to_bytes(4, "big") + payload, width, height)
    rgb = np.random.default_rng(1).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(buf, "PNG")
    return buf.getvalue()


NOVELAI_STEALTH = json.dumps(
    {
        "Description": "1girl, sunflowers",
        "Software": "NovelAI",
        "Source": "NovelAI Diffusion V4.5 4BDE2A90",
        "Comment": json.dumps({"steps": 28, "sampler": "k_euler_ancestral"}),
    }
)


@pytest.mark.parametrize("compressed, magic", [(True, "stealth_pngcomp"), (False, "stealth_pnginfo")])
def test_novelai_stealth_alpha(compressed, magic):
    signal = detect_one(stealth_png(NOVELAI_STEALTH, compressed, size=(60, 50)))
    assert_flagged(signal, "NovelAI")
    assert signal.evidence == f"alpha:{magic} (NovelAI, source=NovelAI Diffusion V4.5 4BDE2A90)"


def test_stealth_payload_is_read_column_major():
    data = stealth_png("hello stealth", compressed=False)
    alpha = np.asarray(Image.open(io.BytesIO(data)).getchannel("A"))
    assert read_stealth_payload(alpha) == ("stealth_pnginfo", "hello stealth")
    assert read_stealth_payload(alpha.T.copy()) is None  # row-major reading finds nothing


def test_stealth_a1111_parameters():
    assert_flagged(
        detect_one(stealth_png(A1111_TEXT, compressed=True, size=(64, 64))),
        "AUTOMATIC1111",
        "alpha:stealth_pngcomp (AUTOMATIC1111, model_hash=6ce0161689",
    )


def test_stealth_bad_payloads_are_no_evidence():
    assert_real(detect_one(encode("PNG", mode="RGBA")))  # opaque alpha: LSBs all 1
    plain_under_gzip_magic = b"stealth_pngcomp" + (5 * 8).to_bytes(4, "big") + b"hello"
    assert read_stealth_payload(stealth_alpha(plain_under_gzip_magic, 40, 30)) is None
    length_too_long = b"stealth_pnginfo" + (10**6).to_bytes(4, "big")
    assert read_stealth_payload(stealth_alpha(length_too_long, 40, 30)) is None
    not_utf8 = b"stealth_pnginfo" + (2 * 8).to_bytes(4, "big") + b"\xff\xfe"
    assert read_stealth_payload(stealth_alpha(not_utf8, 40, 30)) is None
    assert read_stealth_payload(np.zeros((3, 3), dtype=np.uint8)) is None


# --- EXIF --------------------------------------------------------------------------------


def exif_bytes(user_comment=None, **base) -> Image.Exif:
    exif = Image.Exif()
    tags = {"Make": 0x010F, "Model": 0x0110, "Software": 0x0131, "DateTime": 0x0132}
    for name, value in base.items():
        exif[tags[name]] = value
    if user_comment is not None:
        exif.get_ifd(IFD_EXIF)[USER_COMMENT] = user_comment
    return exif


@pytest.mark.parametrize(
    "fmt, comment",
    [
        ("JPEG", b"UNICODE\0" + A1111_TEXT.encode("utf-16-be")),  # what A1111 (piexif) writes
        ("WEBP", b"UNICODE\0" + A1111_TEXT.encode("utf-16-le")),
        ("JPEG", b"ASCII\0\0\0" + A1111_TEXT.encode()),
        ("WEBP", A1111_TEXT.encode()),
    ],
)
def test_sd_parameters_in_exif_user_comment(fmt, comment):
    signal = detect_one(encode(fmt, exif=exif_bytes(comment)))
    assert_flagged(signal, "AUTOMATIC1111", "exif:UserComment (AUTOMATIC1111, model_hash=6ce0161689")


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_fooocus_exif_software(fmt):
    exif = exif_bytes(b"UNICODE\0" + json.dumps({"Prompt": "a cat"}).encode("utf-16-be"), Software="Fooocus v2.5.5")
    assert_flagged(detect_one(encode(fmt, exif=exif)), "Fooocus", "exif:Software (Fooocus, Fooocus v2.5.5)")


@pytest.mark.parametrize("software", ["Adobe Photoshop 25.0 (Windows)", "GIMP 2.10.36", "Ver.1.00 ", "HDR+ 1.0.5"])
def test_camera_jpeg_with_ordinary_exif_is_not_flagged(software):
    exif = exif_bytes(
        b"ASCII\0\0\0Holiday in Crete, 5 steps from the sea",
        Make="OLYMPUS IMAGING CORP.",
        Model="E-M10",
        Software=software,
        DateTime="2023:07:01 10:00:00",
    )
    assert_real(detect_one(encode("JPEG", exif=exif)))


def test_garbage_user_comment_is_no_evidence():
    assert_real(detect_one(encode("JPEG", exif=exif_bytes(b"UNICODE\0\xff\xfe\x00"))))


# --- XMP ---------------------------------------------------------------------------------

XMP_HEAD = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
)
XMP_TAIL = '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
NS = 'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'


def xmp_attribute(source: str) -> str:
    return XMP_HEAD + f'<rdf:Description rdf:about="" {NS} Iptc4xmpExt:DigitalSourceType="{source}"/>' + XMP_TAIL


def xmp_element(source: str) -> str:
    return (
        XMP_HEAD + f'<rdf:Description rdf:about="" {NS}>\n  <Iptc4xmpExt:DigitalSourceType>{source}'
        "</Iptc4xmpExt:DigitalSourceType>\n</rdf:Description>" + XMP_TAIL
    )


def xmp_resource(source: str) -> str:
    return (
        XMP_HEAD + f'<rdf:Description rdf:about="" {NS}><Iptc4xmpExt:DigitalSourceType rdf:resource="{source}"/>'
        "</rdf:Description>" + XMP_TAIL
    )


def png_with_xmp(xmp: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    return encode("PNG", pnginfo=info)


@pytest.mark.parametrize(
    "make",
    [
        lambda x: encode("JPEG", xmp=x.encode()),
        lambda x: encode("WEBP", xmp=x.encode()),
        png_with_xmp,
    ],
)
@pytest.mark.parametrize("form", [xmp_attribute, xmp_element, xmp_resource])
def test_xmp_ai_digital_source_type(make, form):
    assert_flagged(
        detect_one(make(form(TRAINED))), "IPTC DigitalSourceType", "xmp:DigitalSourceType (trainedAlgorithmicMedia)"
    )


def test_xmp_source_types():
    composite = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
    assert xmp_ai_source_type(xmp_element(composite)) == "compositeWithTrainedAlgorithmicMedia"
    assert xmp_ai_source_type(xmp_attribute("trainedAlgorithmicMedia")) == "trainedAlgorithmicMedia"
    for other in (CAPTURE, "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia", "<broken"):
        assert xmp_ai_source_type(xmp_attribute(other)) is None
    assert xmp_ai_source_type("<x:xmpmeta><Iptc4xmpExt:DigitalSourceType>") is None


@pytest.mark.parametrize("form", [xmp_attribute, xmp_element, xmp_resource])
def test_xmp_digital_capture_is_not_flagged(form):
    assert_real(detect_one(encode("JPEG", xmp=form(CAPTURE).encode())))


# --- C2PA: the pure manifest-store function -----------------------------------------------


def store(*manifests: dict, active: str = "urn:a") -> dict:
    return {"active_manifest": active, "manifests": {m["label"]: m for m in manifests}}


def manifest(label="urn:a", generator="Adobe_Photoshop/25.0 adobe_c2pa/0.7.6", *actions: dict, info=None) -> dict:
    m = {
        "label": label,
        "claim_generator": generator,
        "assertions": [
            {"label": "stds.schema-org.CreativeWork", "data": {"author": [{"name": "A"}]}},
            {"label": "c2pa.actions", "data": {"actions": list(actions)}},
        ],
    }
    if info is not None:
        m["claim_generator_info"] = info
    return m


def test_c2pa_ai_action_is_evidence():
    ai = manifest(
        "urn:a",
        "Adobe_Photoshop/25.0",
        {"action": "c2pa.edited"},
        {"action": "c2pa.placed", "digitalSourceType": TRAINED.replace("trained", "compositeWithTrained")},
    )
    assert c2pa_evidence(store(ai))[:2] == (
        "C2PA:Adobe_Photoshop/25.0",
        "c2pa:actions (compositeWithTrainedAlgorithmicMedia, claim_generator=Adobe_Photoshop/25.0)",
    )
    v2 = manifest(
        "urn:a",
        None,
        {"action": "c2pa.created", "digitalSourceType": TRAINED},
        info=[{"name": "ChatGPT", "version": "1.0"}],
    )
    v2["assertions"][1]["label"] = "c2pa.actions.v2"
    assert c2pa_evidence(store(v2)).tool == "C2PA:ChatGPT"


def test_c2pa_ai_ingredient_manifest_is_evidence():
    edit = manifest("urn:a", "Adobe_Photoshop/25.0", {"action": "c2pa.opened"})
    firefly = manifest(
        "urn:b", "Adobe_Firefly adobe_c2pa/0.7", {"action": "c2pa.created", "digitalSourceType": TRAINED}
    )
    assert c2pa_evidence(store(edit, firefly)).tool == "C2PA:Adobe_Firefly"


def test_c2pa_known_ai_claim_generator_is_evidence():
    m = manifest("urn:a", None, info=[{"name": "Adobe Firefly", "version": "3"}])
    assert c2pa_evidence(store(m)) == ("C2PA:Adobe Firefly", "c2pa:claim_generator (Adobe Firefly)", ("Adobe Firefly",))


@pytest.mark.parametrize(
    "s",
    [
        store(manifest("urn:a", "Leica M11-P", {"action": "c2pa.created", "digitalSourceType": CAPTURE})),
        store(manifest("urn:a", "Adobe_Photoshop/25.0 adobe_c2pa/0.7.6", {"action": "c2pa.edited"})),
        store(
            manifest(
                "urn:a",
                "Procedural/1.0",
                {"action": "c2pa.created", "digitalSourceType": TRAINED.replace("trainedA", "a")},
            )
        ),
        {"manifests": []},
        {"manifests": {"urn:a": {"assertions": [{"label": "c2pa.actions", "data": {"actions": {"x": 1}}}, 5]}}},
        {},
    ],
)
def test_c2pa_without_ai_claims_is_no_evidence(s):
    assert c2pa_evidence(s) is None


# --- C2PA: real signed files ---------------------------------------------------------------


def _signer():
    """A c2pa Signer with a throwaway CA and end-entity certificate (the SDK refuses self-signed leaves)."""
    c2pa = pytest.importorskip("c2pa")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject, issuer, public_key, signing_key, ca: bool):  # the SDK needs a v3 chain with key ids
        def name(cn):
            return x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, cn),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "audit tests"),
                ]
            )

        usage = dict(
            digital_signature=not ca,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(**usage), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False
            )
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("test CA", "test CA", ca_key.public_key(), ca_key, ca=True)
    leaf = cert("test signer", "test CA", leaf_key.public_key(), ca_key, ca=False)
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    key = leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return c2pa, c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None))


def signed(fmt: str, mime: str, generator: str, source_type: str) -> bytes:
    c2pa, signer = _signer()
    definition = {
        "claim_generator_info": [{"name": generator, "version": "1.0"}],
        "title": "test",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": source_type}]},
            }
        ],
    }
    dest = io.BytesIO()
    with signer, c2pa.Builder(definition) as builder:
        builder.sign(signer, mime, io.BytesIO(encode(fmt)), dest)
    return dest.getvalue()


@pytest.mark.parametrize("fmt, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_signed_c2pa_file_with_ai_source_type(fmt, mime):
    signal = detect_one(signed(fmt, mime, "Test Generator", TRAINED))
    assert_flagged(
        signal, "C2PA:Test Generator", "c2pa:actions (trainedAlgorithmicMedia, claim_generator=Test Generator)"
    )


def test_signed_c2pa_camera_file_is_not_flagged():
    assert_real(detect_one(signed("JPEG", "image/jpeg", "Test Camera", CAPTURE)))


def test_c2pa_marker_without_a_manifest_does_not_crash():
    assert_real(detect_one(png_with_text(Comment="c2pa jumbf c2pa.manifest")))
