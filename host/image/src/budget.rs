//! The board's `[budget]`: compare what a build produced with the size
//! limits the board sets, and report every overrun with its difference.
use crate::board::Board;
use crate::size::human;
use std::fmt;

/// One budget a build exceeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overrun {
    pub what: &'static str,
    pub size: u64,
    pub budget: u64,
}

impl fmt::Display for Overrun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is {} ({} bytes), budget {} ({} bytes): {} bytes over",
            self.what,
            human(self.size),
            self.size,
            human(self.budget),
            self.budget,
            self.size - self.budget
        )
    }
}

/// Every budget a build exceeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("over the board's size budget:\n{}", .0.iter().map(|o| format!("  {o}")).collect::<Vec<_>>().join("\n"))]
pub struct OverBudget(pub Vec<Overrun>);

/// Compare what was built with the board's `[budget]`.
pub fn check(
    board: &Board,
    kernel: u64,
    initramfs: u64,
    rootfs: Option<u64>,
) -> Result<(), OverBudget> {
    let b = &board.budget;
    let over: Vec<Overrun> = [
        ("kernel", Some(kernel), b.kernel),
        ("initramfs", Some(initramfs), b.initramfs),
        ("rootfs", rootfs, b.rootfs),
    ]
    .into_iter()
    .filter_map(|(what, size, budget)| match (size, budget) {
        (Some(size), Some(budget)) if size > budget => Some(Overrun { what, size, budget }),
        _ => None,
    })
    .collect();
    if over.is_empty() {
        Ok(())
    } else {
        Err(OverBudget(over))
    }
}
