// placeholder until the imagelist module lands
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub reference: String,
    pub platform: Option<String>,
}
#[derive(Debug, thiserror::Error)]
pub enum ImageListError {
    #[error("x")]
    X,
}
pub fn parse_list(_t: &str) -> Vec<ImageSpec> {
    Vec::new()
}
pub fn images_from_file(_p: &std::path::Path) -> Result<Vec<ImageSpec>, ImageListError> {
    Err(ImageListError::X)
}
