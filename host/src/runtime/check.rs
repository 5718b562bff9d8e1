//! Static checks of a candidate module, before and right after compilation.
//!
//! The byte-level checks run before wasmtime sees the file, so that an ELF binary, a precompiled
//! engine artifact or a component is refused with a clear reason instead of a parse error, and so
//! that nothing but a plain core module is ever handed to the compiler.

use wasmparser::{Chunk, Encoding, ExternalKind, Parser, Payload};
use wasmtime::{ExternType, Module, ValType};

use super::LoadError;
use modelhost_abi::exports;

/// Largest artifact accepted. A kernel is a few tens of KiB; this leaves room for other
/// languages' runtimes while refusing absurd files before they are read into a compiler.
pub const MAX_ARTIFACT_BYTES: usize = 32 << 20;

/// Largest initial table a guest may declare.
pub const MAX_TABLE_ELEMENTS: u64 = 10_000;

const WASM_MAGIC: &[u8; 4] = b"\0asm";
const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];

/// Refuses anything that is not a small, import-free, start-free core module with one memory
/// that fits the memory limit.
pub fn check_module_bytes(bytes: &[u8], memory_limit: usize) -> Result<(), LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Empty);
    }
    if bytes.len() > MAX_ARTIFACT_BYTES {
        return Err(LoadError::TooLarge { size: bytes.len() });
    }
    if bytes.starts_with(b"\x7fELF") {
        return Err(LoadError::NotWasm(
            "an ELF file (a native binary or precompiled engine code); only wasm bytes are compiled",
        ));
    }
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        return Err(LoadError::NotWasm(
            "the file does not start with the wasm magic number",
        ));
    }
    if bytes[4..8] != CORE_VERSION {
        return Err(LoadError::NotWasm(
            "unsupported wasm version or a component; a model is a core module (version 1)",
        ));
    }

    let mut memories = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| LoadError::Invalid(e.to_string()))?;
        match payload {
            Payload::Version { encoding, .. } if encoding != Encoding::Module => {
                return Err(LoadError::NotWasm("a component, not a core module"));
            }
            Payload::ImportSection(section) => {
                if let Some(import) = section.into_imports().next() {
                    let import = import.map_err(|e| LoadError::Invalid(e.to_string()))?;
                    return Err(LoadError::Import {
                        module: import.module.to_string(),
                        name: import.name.to_string(),
                    });
                }
            }
            Payload::StartSection { .. } => return Err(LoadError::StartFunction),
            Payload::MemorySection(section) => {
                for memory in section {
                    let memory = memory.map_err(|e| LoadError::Invalid(e.to_string()))?;
                    memories += 1;
                    if memory.memory64 || memory.shared {
                        return Err(LoadError::Memories(
                            "declares a 64-bit or shared memory".into(),
                        ));
                    }
                    let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                    let declared = memory.initial.saturating_mul(page);
                    if declared > memory_limit as u64 {
                        return Err(LoadError::MemoryTooLarge {
                            declared,
                            limit: memory_limit,
                        });
                    }
                }
            }
            Payload::TableSection(section) => {
                for table in section {
                    let table = table.map_err(|e| LoadError::Invalid(e.to_string()))?;
                    if table.ty.initial > MAX_TABLE_ELEMENTS {
                        return Err(LoadError::TableTooLarge {
                            declared: table.ty.initial,
                        });
                    }
                }
            }
            Payload::ExportSection(section) => {
                for export in section {
                    let export = export.map_err(|e| LoadError::Invalid(e.to_string()))?;
                    if export.kind == ExternalKind::Memory && export.name != exports::MEMORY {
                        return Err(LoadError::Memories(format!(
                            "exports a second memory name `{}`",
                            export.name
                        )));
                    }
                }
            }
            _ => {}
        }
    }
    // Imported memories were refused above with the other imports.
    if memories != 1 {
        return Err(LoadError::Memories(format!("declares {memories} memories")));
    }
    Ok(())
}

/// Whether `bytes` look like the beginning of a wasm module whose end is missing — what a
/// copy in progress, or one that stopped early, leaves behind — rather than a module that is
/// whole and wrong. True for an empty file, for a prefix of the 8-byte header, and for bytes
/// whose every section header reads cleanly but whose last section needs more bytes than there
/// are (read as a stream, the parser asks for more data; read as the whole file, it fails). A
/// file cut exactly between two sections reads as complete framing and is not recognised.
pub fn is_cut_short(bytes: &[u8]) -> bool {
    let header = [WASM_MAGIC.as_slice(), &CORE_VERSION].concat();
    if bytes.len() < header.len() {
        return header.starts_with(bytes);
    }
    if Parser::new(0)
        .parse_all(bytes)
        .all(|payload| payload.is_ok())
    {
        return false;
    }
    let mut parser = Parser::new(0);
    let mut offset = 0;
    loop {
        match parser.parse(&bytes[offset..], false) {
            Ok(Chunk::NeedMoreData(_)) => return true,
            Ok(Chunk::Parsed { consumed, payload }) => {
                offset += consumed;
                if let Payload::End(_) = payload {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
}

/// The exports ABI v1 requires, with their core signatures as (params, results).
const REQUIRED_FUNCS: [(&str, &[ValKind], &[ValKind], &str); 4] = [
    (exports::ABI_VERSION, &[], &[ValKind::I32], "func() -> i32"),
    (exports::INFO, &[], &[ValKind::I64], "func() -> i64"),
    (
        exports::ALLOC,
        &[ValKind::I32],
        &[ValKind::I32],
        "func(i32) -> i32",
    ),
    (
        exports::PREDICT,
        &[ValKind::I32, ValKind::I32, ValKind::I32, ValKind::I32],
        &[ValKind::I32],
        "func(i32, i32, i32, i32) -> i32",
    ),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum ValKind {
    I32,
    I64,
}

fn kind_of(ty: &ValType) -> Option<ValKind> {
    match ty {
        ValType::I32 => Some(ValKind::I32),
        ValType::I64 => Some(ValKind::I64),
        _ => None,
    }
}

/// Checks that every export ABI v1 needs exists with the right type.
pub fn check_exports(module: &Module) -> Result<(), LoadError> {
    match module.get_export(exports::MEMORY) {
        Some(ExternType::Memory(_)) => {}
        Some(other) => {
            return Err(LoadError::ExportType {
                name: exports::MEMORY,
                found: describe(&other),
                expected: "a memory",
            });
        }
        None => return Err(LoadError::MissingExport(exports::MEMORY)),
    }
    for (name, params, results, expected) in REQUIRED_FUNCS {
        let ty = module
            .get_export(name)
            .ok_or(LoadError::MissingExport(name))?;
        let matches = match &ty {
            ExternType::Func(func) => {
                func.params()
                    .map(|p| kind_of(&p))
                    .eq(params.iter().map(|k| Some(*k)))
                    && func
                        .results()
                        .map(|r| kind_of(&r))
                        .eq(results.iter().map(|k| Some(*k)))
            }
            _ => false,
        };
        if !matches {
            return Err(LoadError::ExportType {
                name,
                found: describe(&ty),
                expected,
            });
        }
    }
    Ok(())
}

fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(func) => {
            let list = |types: Vec<String>| types.join(", ");
            let params = list(func.params().map(|p| p.to_string()).collect());
            let results: Vec<String> = func.results().map(|r| r.to_string()).collect();
            match results.len() {
                0 => format!("func({params})"),
                1 => format!("func({params}) -> {}", results[0]),
                _ => format!("func({params}) -> ({})", list(results)),
            }
        }
        ExternType::Memory(_) => "a memory".to_string(),
        ExternType::Table(_) => "a table".to_string(),
        ExternType::Global(_) => "a global".to_string(),
        ExternType::Tag(_) => "a tag".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_cut_short_is_told_from_a_whole_module_and_from_other_bytes() {
        let module = wat::parse_str(
            r#"(module (memory (export "memory") 1)
                 (func (export "f") (result i32) i32.const 7)
                 (data (i32.const 0) "a data segment long enough to cut in the middle"))"#,
        )
        .unwrap();
        assert!(!is_cut_short(&module), "whole");
        let in_data = module.windows(6).position(|w| w == b"a data").unwrap() + 5;
        for cut in [0, 3, 9, in_data, module.len() - 1] {
            assert!(
                is_cut_short(&module[..cut]),
                "cut at {cut} of {}",
                module.len()
            );
        }
        assert!(!is_cut_short(b"\x7fELF\x02\x01\x01\0"), "not wasm");
        assert!(!is_cut_short(b"garbage, not wasm at all"), "not wasm");
        let mut trailing = module.clone();
        trailing.extend_from_slice(b"\xff\xff\xff");
        assert!(!is_cut_short(&trailing), "whole, with garbage after it");
    }
}
