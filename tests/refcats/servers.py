"""Test-only builders: a hats-import collection made on a Dask LocalCluster, and local HTTP and
S3-compatible (moto) servers publishing a directory, as remote reference stores are published."""

from __future__ import annotations

import functools
import logging
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

#: calserv name -> VizieR name, as VizieR distributes APASS-like catalogues
VIZIER = {
    "source_id": "Source", "ra": "RAJ2000", "dec": "DEJ2000", "B": "Bmag", "B_err": "e_Bmag",
    "V": "Vmag", "V_err": "e_Vmag", "R": "Rmag", "R_err": "e_Rmag", "I": "Imag", "I_err": "e_Imag",
}  # fmt: skip
BAND_MAP = ["--band", "V:Vmag:e_Vmag", "--band", "R:Rmag:e_Rmag", "--band", "B:Bmag:e_Bmag"]
MARGIN_ARCSEC = 60.0


def hats_import_collection(table: pa.Table, out: Path, name: str = "viz") -> Path:
    """``table`` (calserv names) written with VizieR names, imported by hats-import on a Dask
    LocalCluster as a collection with a margin, one directory per partition (npix_suffix "/")."""
    from dask.distributed import Client, LocalCluster
    from hats_import.collection.arguments import CollectionArguments
    from hats_import.pipeline import pipeline_with_client

    out.mkdir(parents=True, exist_ok=True)
    src = out / "input.csv"
    pacsv.write_csv(table.rename_columns([VIZIER[c] for c in table.column_names]), src)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        args = (
            CollectionArguments(
                output_artifact_name=name,
                output_path=out,
                npix_suffix="/",
                progress_bar=False,
                tmp_dir=out / "tmp",
            )
            .catalog(
                input_file_list=[str(src)],
                file_reader="csv",
                ra_column="RAJ2000",
                dec_column="DEJ2000",
                pixel_threshold=300,
                highest_healpix_order=10,
            )
            .add_margin(margin_threshold=MARGIN_ARCSEC, is_default=True)
        )
        pipeline_with_client(args, client)
    shutil.rmtree(out / "tmp", ignore_errors=True)
    return out / name


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class HttpServer:
    """A static HTTP server (with directory listings) of ``directory`` on a free port."""

    def __init__(self, directory: Path):
        handler = functools.partial(_Quiet, directory=str(directory))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class S3Server:
    """moto's S3-compatible server on a free port, with bucket ``bucket``."""

    KEY = SECRET = "testing"

    def __init__(self, bucket: str = "refcats"):
        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.bucket = bucket
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.KEY,
            aws_secret_access_key=self.SECRET,
        ).create_bucket(Bucket=bucket)

    @property
    def options(self) -> dict[str, str]:
        """fsspec storage options reaching this server."""
        return {"key": self.KEY, "secret": self.SECRET, "endpoint_url": self.endpoint}

    def cli_options(self) -> list[str]:
        return [a for k, v in self.options.items() for a in ("--option", f"{k}={v}")]

    def upload(self, directory: Path, prefix: str) -> str:
        """Copy ``directory`` to ``s3://bucket/prefix``; returns that URL."""
        import s3fs

        fs = s3fs.S3FileSystem(
            key=self.KEY, secret=self.SECRET, client_kwargs={"endpoint_url": self.endpoint}
        )
        fs.put(str(directory), f"{self.bucket}/{prefix}", recursive=True)
        return f"s3://{self.bucket}/{prefix}"

    def stop(self) -> None:
        self.server.stop()
