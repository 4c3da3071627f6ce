//! ARM sends `null` for absent values in places (`"status": null`); these helpers read `null` as the
//! field's default so one null never rejects a whole estate.

use serde::{Deserialize, Deserializer};

pub fn default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

pub fn or_allow<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_else(|| "Allow".to_string()))
}
