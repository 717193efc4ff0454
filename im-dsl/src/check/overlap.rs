pub(crate) fn check_overlap(
    _: &crate::model::Spec,
    _: &super::lower::Side,
    _: &mut crate::diag::Diagnostics,
) {
}
