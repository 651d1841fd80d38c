//! Splitting a service's output stream into log lines: bytes arrive in
//! arbitrary chunks; complete lines are emitted, a partial line waits for
//! the rest (or is flushed when it grows too long or the stream ends).
#[derive(Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
}

/// Longest line held back before it is emitted as is.
const MAX: usize = 1024;

impl LineBuffer {
    pub fn new() -> Self {
        LineBuffer { buf: Vec::new() }
    }

    /// Feed bytes; `emit` gets each complete line without its newline.
    pub fn feed(&mut self, mut data: &[u8], emit: &mut dyn FnMut(&str)) {
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            let (line, rest) = data.split_at(pos);
            self.buf.extend_from_slice(line);
            self.flush(emit);
            data = rest.get(1..).unwrap_or(&[]);
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= MAX {
            self.flush(emit);
        }
    }

    /// Emit whatever is held (end of stream).
    pub fn flush(&mut self, emit: &mut dyn FnMut(&str)) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        emit(text.trim_end_matches('\r'));
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(chunks: &[&[u8]], end: bool) -> Vec<String> {
        let mut out = Vec::new();
        let mut lb = LineBuffer::new();
        for c in chunks {
            lb.feed(c, &mut |l| out.push(l.to_string()));
        }
        if end {
            lb.flush(&mut |l| out.push(l.to_string()));
        }
        out
    }

    #[test]
    fn splits_across_chunks() {
        assert_eq!(
            collect(&[b"he", b"llo\nwor", b"ld\n"], false),
            ["hello", "world"]
        );
        assert_eq!(collect(&[b"a\n\nb"], false), ["a"]);
        assert_eq!(collect(&[b"a\n\nb"], true), ["a", "b"]);
        assert_eq!(collect(&[b"x\r\n"], false), ["x"]);
    }

    #[test]
    fn long_lines_are_cut() {
        let long = vec![b'x'; 3000];
        let out = collect(&[&long], true);
        assert_eq!(out.iter().map(|l| l.len()).sum::<usize>(), 3000);
        assert!(out.iter().all(|l| l.len() <= 3000));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(collect(&[b"\xff\n"], false), ["\u{fffd}"]);
    }
}
