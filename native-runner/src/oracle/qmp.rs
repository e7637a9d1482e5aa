//! A QMP client on QEMU's unix socket: `query-memory-devices`, and
//! `object-add` / `device_add` / `device_del` for hotplug.

use super::error::OracleError;
use super::qemu::BackingFile;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// A memory device as QMP reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MemoryDevice {
    /// `type` (virtio-pmem).
    pub kind: String,
    /// The device id.
    pub id: String,
    /// Guest-physical start.
    pub memaddr: u64,
    /// Size in bytes.
    pub size: u64,
}

/// A QMP session in command mode.
pub struct Qmp {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Qmp {
    /// Connects (QEMU creates the socket soon after it starts) and leaves
    /// capabilities negotiation.
    pub fn connect(path: &Path, deadline: Instant) -> Result<Qmp, OracleError> {
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(OracleError::Guest(format!("QEMU's QMP socket {} did not open: {e}", path.display())))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(OracleError::io("QMP socket"))?;
        let reader = BufReader::new(stream.try_clone().map_err(OracleError::io("QMP socket"))?);
        let mut q = Qmp { writer: stream, reader };
        q.read_message()?; // the greeting
        q.execute("qmp_capabilities", json!({})).map_err(OracleError::Guest)?;
        Ok(q)
    }

    fn read_message(&mut self) -> Result<Value, OracleError> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err(OracleError::Guest("QEMU closed its QMP socket".into())),
            Ok(_) => serde_json::from_str(&line)
                .map_err(|e| OracleError::Guest(format!("QMP sent something that is not JSON ({e}): {}", line.trim()))),
            Err(e) => Err(OracleError::Io { context: "reading QMP".into(), source: e }),
        }
    }

    /// Runs a command: `Ok(return value)`, or `Err(QEMU's error message)`.
    /// A broken socket is an `Err` too, with what happened.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value, String> {
        let msg = json!({ "execute": command, "arguments": arguments });
        writeln!(self.writer, "{msg}").map_err(|e| format!("cannot write to QMP: {e}"))?;
        loop {
            let v = self.read_message().map_err(|e| e.to_string())?;
            if v.get("event").is_some() {
                continue;
            }
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            let desc = v.pointer("/error/desc").and_then(Value::as_str).unwrap_or("an error without description");
            return Err(desc.to_string());
        }
    }

    /// `query-memory-devices`.
    pub fn memory_devices(&mut self) -> Result<Vec<MemoryDevice>, OracleError> {
        let r = self.execute("query-memory-devices", json!({})).map_err(OracleError::Guest)?;
        Ok(r.as_array()
            .map(|a| {
                a.iter()
                    .map(|d| MemoryDevice {
                        kind: d["type"].as_str().unwrap_or("").to_string(),
                        id: d["data"]["id"].as_str().unwrap_or("").to_string(),
                        memaddr: d["data"]["memaddr"].as_u64().unwrap_or(0),
                        size: d["data"]["size"].as_u64().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `object-add` of the backend and `device_add` of the virtio-pmem-pci
    /// in front of it; QEMU's error message when it refuses.
    pub fn hotplug(&mut self, d: &BackingFile) -> Result<(), String> {
        self.execute(
            "object-add",
            json!({ "qom-type": "memory-backend-file", "id": d.memdev(), "mem-path": d.path, "size": d.size,
                    "share": d.share, "readonly": d.readonly }),
        )?;
        self.execute("device_add", json!({ "driver": "virtio-pmem-pci", "memdev": d.memdev(), "id": d.id }))?;
        Ok(())
    }

    /// `device_del`; QEMU's error message when it refuses.
    pub fn unplug(&mut self, id: &str) -> Result<(), String> {
        self.execute("device_del", json!({ "id": id })).map(|_| ())
    }
}
