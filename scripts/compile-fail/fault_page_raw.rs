// expect: E0624
// The raw page pointer of a fault is not part of the safe API.
fn case(fault: &VmFault) -> usize {
    fault.page_ptr() as usize
}
