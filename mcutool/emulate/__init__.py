"""Running built firmware in an emulator (QEMU) and reading back what it reports."""
from .qemu import QemuRun, Record, parse_records, qemu_command, run_firmware

__all__ = ["QemuRun", "Record", "parse_records", "qemu_command", "run_firmware"]
